//! GET, whole or ranged. A server that ignores `Range` and answers 200 with
//! the whole object is handled (csal-http's `ranged_body` cuts the range
//! out), and a partial answer's `Content-Range` is checked, so the caller
//! never gets the wrong bytes.

use csal_core::{ByteRange, ByteStream, Result, StorageError};
use reqwest::Method;
use reqwest::header::RANGE;

use crate::client::DavClient;
use crate::error::status_error;

pub(crate) async fn read(client: &DavClient, id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    if let Some(r) = &range {
        r.check()?;
    }
    let what = format!("GET {id}");
    let headers: Vec<_> = range.iter().map(|r| (RANGE, r.to_http_header())).collect();
    let resp = client.simple(Method::GET, id, &headers).await?;
    match resp.status().as_u16() {
        404 => Err(StorageError::not_found(format!("no object '{id}'"))),
        416 => Err(StorageError::new(
            csal_core::ErrorKind::RangeNotSatisfiable,
            format!("range {} starts past the end of '{id}'", range.map(|r| r.to_string()).unwrap_or_default()),
        )),
        200 | 206 => csal_http::ranged_body(resp, range, None, &what),
        _ => Err(status_error(resp.status(), resp.headers(), &what)),
    }
}
