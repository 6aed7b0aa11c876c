//! GET (whole or ranged) and HEAD.

use std::collections::BTreeMap;
use std::time::SystemTime;

use csal_core::{ByteRange, ByteStream, ErrorKind, ObjectMeta, Result, StorageError};
use futures::StreamExt;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderMap, LAST_MODIFIED, RANGE};

use crate::client::SwiftClient;
use crate::error::{status_error, transport_error};

pub(crate) async fn read(client: &SwiftClient, id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    if let Some(r) = &range {
        r.check()?;
    }
    let what = format!("GET {id}");
    let container = &client.settings.container;
    let resp = client
        .send(&what, |s| {
            let req = client.http.request(Method::GET, SwiftClient::object_url(s, container, id));
            match range {
                Some(r) => req.header(RANGE, r.to_http_header()),
                None => req,
            }
        })
        .await?;
    let length = header_u64(resp.headers(), CONTENT_LENGTH.as_str());
    match (resp.status().as_u16(), range) {
        (404, _) => Err(StorageError::not_found(format!("no object '{id}'"))),
        (416, Some(r)) => {
            Err(StorageError::new(ErrorKind::RangeNotSatisfiable, format!("range {r} starts past the end of '{id}'")))
        }
        (200, None) => {
            let body = body_stream(resp, what);
            Ok(match length {
                Some(len) => body.expect_len(len),
                None => body,
            })
        }
        (206, Some(r)) => {
            let (start, end, total) = content_range(resp.headers())
                .ok_or_else(|| StorageError::permanent(format!("{what}: 206 without a valid Content-Range")))?;
            let want = r.resolve(total)?;
            if want.start != start || want.end != end + 1 {
                return Err(StorageError::integrity(format!("{what}: asked for {r}, got {start}-{end}/{total}")));
            }
            Ok(body_stream(resp, what).expect_len(end + 1 - start))
        }
        (200, Some(r)) => {
            // Range ignored (Swift does this for a range it finds malformed):
            // cut the range out of the whole body ourselves.
            let total = length.ok_or_else(|| StorageError::permanent(format!("{what}: no Content-Length")))?;
            let want = r.resolve(total)?;
            Ok(body_stream(resp, what).expect_len(total).window(want.start, want.end - want.start))
        }
        _ => Err(status_error(resp.status(), resp.headers(), &what)),
    }
}

pub(crate) async fn stat(client: &SwiftClient, id: &str) -> Result<ObjectMeta> {
    let what = format!("HEAD {id}");
    let container = &client.settings.container;
    let resp =
        client.send(&what, |s| client.http.request(Method::HEAD, SwiftClient::object_url(s, container, id))).await?;
    if resp.status().as_u16() == 404 {
        return Err(StorageError::not_found(format!("no object '{id}'")));
    }
    if !resp.status().is_success() {
        return Err(status_error(resp.status(), resp.headers(), &what));
    }
    let h = resp.headers();
    let text = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut metadata = BTreeMap::new();
    for (k, v) in h {
        if let Some(key) = k.as_str().strip_prefix("x-object-meta-") {
            if let Ok(v) = v.to_str() {
                metadata.insert(key.to_owned(), v.to_owned());
            }
        }
    }
    Ok(ObjectMeta {
        modified: text(LAST_MODIFIED.as_str()).and_then(|t| httpdate::parse_http_date(&t).ok()).or_else(|| {
            text("x-timestamp")
                .and_then(|t| t.parse::<f64>().ok())
                .map(|secs| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs))
        }),
        content_type: text(CONTENT_TYPE.as_str()),
        etag: text(ETAG.as_str()).map(|e| e.trim_matches('"').to_owned()),
        metadata,
        ..ObjectMeta::new(id, header_u64(h, CONTENT_LENGTH.as_str()).unwrap_or(0))
    })
}

fn header_u64(h: &HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn content_range(h: &HeaderMap) -> Option<(u64, u64, u64)> {
    let v = h.get(CONTENT_RANGE)?.to_str().ok()?.trim().strip_prefix("bytes")?.trim();
    let (span, total) = v.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total.trim().parse().ok()?))
}

fn body_stream(resp: reqwest::Response, what: String) -> ByteStream {
    ByteStream::new(resp.bytes_stream().map(move |r| r.map_err(|e| transport_error(e, &what))), None)
}
