//! GET (whole or ranged) and HEAD.

use std::collections::BTreeMap;
use std::time::SystemTime;

use csal_core::{ByteRange, ByteStream, ErrorKind, ObjectMeta, Result, StorageError};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, LAST_MODIFIED, RANGE};

use crate::client::SwiftClient;
use crate::error::status_error;

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
    match (resp.status().as_u16(), range) {
        (404, _) => Err(StorageError::not_found(format!("no object '{id}'"))),
        (416, Some(r)) => {
            Err(StorageError::new(ErrorKind::RangeNotSatisfiable, format!("range {r} starts past the end of '{id}'")))
        }
        // A range Swift finds malformed is ignored (200): csal-http cuts it.
        (200 | 206, _) => csal_http::ranged_body(resp, range, None, &what),
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
        if let Some(key) = k.as_str().strip_prefix("x-object-meta-")
            && let Ok(v) = v.to_str()
        {
            metadata.insert(key.to_owned(), v.to_owned());
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
