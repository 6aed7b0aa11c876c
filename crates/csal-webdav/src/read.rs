//! GET, whole or ranged. A server that ignores `Range` and answers 200 with
//! the whole object is handled: the provider skips to the range start and
//! stops at its end, so the caller never gets the wrong bytes.

use csal_core::{ByteRange, ByteStream, Result, StorageError};
use futures::StreamExt;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};

use crate::client::DavClient;
use crate::error::{status_error, transport_error};

pub(crate) async fn read(client: &DavClient, id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    if let Some(r) = &range {
        r.check()?;
    }
    let what = format!("GET {id}");
    let headers: Vec<_> = range.iter().map(|r| (RANGE, r.to_http_header())).collect();
    let resp = client.simple(Method::GET, id, &headers).await?;
    let status = resp.status().as_u16();
    let content_length = header_u64(&resp, CONTENT_LENGTH.as_str());
    match (status, range) {
        (404, _) => Err(StorageError::not_found(format!("no object '{id}'"))),
        (416, _) => Err(StorageError::new(
            csal_core::ErrorKind::RangeNotSatisfiable,
            format!("range {} starts past the end of '{id}'", range.map(|r| r.to_string()).unwrap_or_default()),
        )),
        (200, None) => {
            let body = body_stream(resp, what);
            Ok(match content_length {
                Some(len) => body.expect_len(len),
                None => body,
            })
        }
        (206, Some(r)) => {
            let (start, end, total) = content_range(&resp)
                .ok_or_else(|| StorageError::permanent(format!("{what}: 206 without a valid Content-Range")))?;
            let want = r.resolve(total)?;
            if want.start != start || want.end != end + 1 {
                return Err(StorageError::integrity(format!(
                    "{what}: asked for bytes {r}, server sent {start}-{end}/{total}"
                )));
            }
            Ok(body_stream(resp, what).expect_len(end + 1 - start))
        }
        (200, Some(r)) => {
            // The server ignored Range: cut the range out of the whole body.
            let total = content_length.ok_or_else(|| {
                StorageError::permanent(format!("{what}: server ignored Range and sent no Content-Length"))
            })?;
            let want = r.resolve(total)?;
            let body = body_stream(resp, what).expect_len(total);
            Ok(body.window(want.start, want.end - want.start))
        }
        _ => Err(status_error(resp.status(), resp.headers(), &what)),
    }
}

fn header_u64(resp: &reqwest::Response, name: &str) -> Option<u64> {
    resp.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Content-Range: bytes START-END/TOTAL`.
fn content_range(resp: &reqwest::Response) -> Option<(u64, u64, u64)> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?.trim();
    let v = v.strip_prefix("bytes")?.trim();
    let (span, total) = v.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total.trim().parse().ok()?))
}

fn body_stream(resp: reqwest::Response, what: String) -> ByteStream {
    let stream = resp.bytes_stream().map(move |r| r.map_err(|e| transport_error(e, &what)));
    ByteStream::new(stream, None)
}
