//! Reads: `alt=media` with a `Range` header, streamed, length-checked.

use reqwest::StatusCode;
use reqwest::header::RANGE;

use csal_core::{ByteRange, ByteStream, ErrorKind, Result, StorageError};

use crate::client::GcsClient;
use crate::error;

pub(crate) async fn read(client: &GcsClient, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    if let Some(r) = &range {
        r.check()?;
    }
    let what = format!("read {object_id}");
    let mut url = client.object_url(object_id)?;
    url.query_pairs_mut().append_pair("alt", "media");
    let mut request = client.http.get(url);
    if let Some(r) = &range {
        request = request.header(RANGE, r.to_http_header());
    }
    // No overall timeout (a large download may take long); the client's
    // read timeout bounds every stall instead.
    let response = client.send_raw(request, &what).await?;
    let status = response.status();
    if status == StatusCode::RANGE_NOT_SATISFIABLE {
        return Err(StorageError::new(
            ErrorKind::RangeNotSatisfiable,
            format!(
                "{what}: range {} starts past the end of the object",
                range.map(|r| r.to_string()).unwrap_or_default()
            ),
        ));
    }
    if !status.is_success() {
        return Err(error::from_response(response, &what).await);
    }
    csal_http::ranged_body(response, range, None, &what)
}
