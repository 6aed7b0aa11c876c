//! Reads: Get Blob with `x-ms-range`, streamed and length-checked; stat is
//! Get Blob Properties (HEAD).

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, LAST_MODIFIED};

use csal_core::{ByteRange, ByteStream, ErrorKind, ObjectMeta, Result, StorageError};

use crate::client::AzureClient;
use crate::error;

pub(crate) async fn read(client: &AzureClient, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    let what = format!("read {object_id}");
    // The Blob service has no suffix ranges: turn one into a span first.
    let range = match range {
        Some(r @ ByteRange::Suffix { .. }) => {
            let size = stat(client, object_id).await?.size;
            let span = r.resolve(size)?;
            Some(ByteRange::inclusive(span.start, span.end - 1))
        }
        Some(r) => {
            r.check()?;
            Some(r)
        }
        None => None,
    };
    let mut request = client.http.get(client.blob_url(object_id)?);
    if let Some(r) = &range {
        request = request.header("x-ms-range", r.to_http_header());
    }
    // No overall timeout (large downloads take long); the read timeout
    // bounds every stall.
    let response = client.send_raw(request, &what).await?;
    let status = response.status();
    if status == StatusCode::RANGE_NOT_SATISFIABLE {
        let shown = range.map(|r| r.to_string()).unwrap_or_default();
        return Err(StorageError::new(
            ErrorKind::RangeNotSatisfiable,
            format!("{what}: range {shown} starts past the end of the object"),
        ));
    }
    if !status.is_success() {
        return Err(error::from_response(response, &what).await);
    }
    csal_http::ranged_body(response, range, None, &what)
}

/// Get Blob Properties: size, type, time, etag and `x-ms-meta-*`.
pub(crate) async fn stat(client: &AzureClient, object_id: &str) -> Result<ObjectMeta> {
    let what = format!("stat {object_id}");
    let response = client.send(client.http.head(client.blob_url(object_id)?), &what).await?;
    let headers = response.headers();
    let size = header_u64(headers, CONTENT_LENGTH.as_str())
        .ok_or_else(|| StorageError::transient(format!("{what}: no Content-Length in the answer")))?;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let metadata: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-ms-meta-")?;
            Some((name.to_owned(), v.to_str().ok()?.to_owned()))
        })
        .collect();
    Ok(ObjectMeta {
        object_id: object_id.to_owned(),
        size,
        modified: text(LAST_MODIFIED.as_str()).and_then(|t| httpdate::parse_http_date(&t).ok()),
        content_type: text(CONTENT_TYPE.as_str()),
        etag: text(ETAG.as_str()).map(|e| e.trim_matches('"').to_owned()),
        checksum: None,
        metadata,
    })
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}
