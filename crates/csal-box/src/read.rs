//! Downloads (`GET /files/{id}/content` → 302 to a short-lived download
//! URL, fetched with `Range`) and stat (`GET /files/{id}`).

use csal_core::{ByteRange, ByteStream, Checksum, ObjectMeta, Result, StorageError};
use csal_http::ErrorAnswer;
use serde_json::Value;

use crate::client::{BoxClient, FILE_FIELDS, parse_time};
use crate::error::classify;

/// Run `call` with the file id of `object_id`; when a cached id answers 404
/// (the file was deleted or replaced elsewhere), resolve the path again once.
async fn with_file_id<T, F, Fut>(client: &BoxClient, object_id: &str, what: &str, call: F) -> Result<T>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<std::result::Result<T, ErrorAnswer>>>,
{
    let was_cached = client.cached_file(object_id).is_some();
    let id = client.file_id(object_id).await?;
    match call(id).await? {
        Ok(v) => Ok(v),
        Err(e) if e.status.as_u16() == 404 && was_cached => {
            client.forget_file(object_id);
            let id = client.file_id(object_id).await?;
            call(id).await?.map_err(|e| not_found_or(e, object_id, what))
        }
        Err(e) => Err(not_found_or(e, object_id, what)),
    }
}

fn not_found_or(e: ErrorAnswer, object_id: &str, what: &str) -> StorageError {
    if e.status.as_u16() == 404 {
        StorageError::not_found(format!("no object '{object_id}'"))
    } else {
        classify(e, what)
    }
}

pub(crate) async fn read(client: &BoxClient, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    if let Some(r) = &range {
        r.check()?;
    }
    let what = format!("download '{object_id}'");
    let range_header = range.map(|r| r.to_http_header());
    let first = with_file_id(client, object_id, &what, |id| {
        let url = client.url(&format!("/files/{id}/content"));
        let range_header = range_header.clone();
        let what = what.clone();
        async move {
            client
                .api
                .send(&what, |http| {
                    let req = http.get(&url);
                    match &range_header {
                        Some(h) => req.header("Range", h),
                        None => req,
                    }
                })
                .await
        }
    })
    .await?;
    if first.status().as_u16() == 202 {
        // The file is not ready for download yet (just uploaded).
        let after = csal_http::retry_after(first.headers());
        return Err(
            StorageError::transient(format!("{what}: Box is still processing the file")).with_retry_after(after)
        );
    }
    // A 302 to a pre-authorised download URL: fetched without the token.
    let resp =
        csal_http::follow_download(client.api.http(), first, range, &what).await?.map_err(|e| classify(e, &what))?;
    csal_http::ranged_body(resp, range, None, &what)
}

/// Object metadata of a Box file object.
pub(crate) fn meta_from(object_id: String, file: &Value) -> ObjectMeta {
    let mut meta = ObjectMeta::new(object_id, file.get("size").and_then(Value::as_u64).unwrap_or(0));
    meta.modified = file
        .get("content_modified_at")
        .or_else(|| file.get("modified_at"))
        .and_then(Value::as_str)
        .and_then(parse_time);
    meta.etag = file.get("etag").and_then(Value::as_str).map(str::to_owned);
    if let Some(sha) = file.get("sha1").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        meta.checksum = Some(Checksum { algorithm: "sha1".into(), value: sha.to_lowercase() });
    }
    meta
}

pub(crate) async fn stat_raw(client: &BoxClient, object_id: &str) -> Result<Value> {
    let what = format!("stat '{object_id}'");
    let resp = with_file_id(client, object_id, &what, |id| {
        let url = client.url(&format!("/files/{id}?fields={FILE_FIELDS}"));
        let what = what.clone();
        async move { client.api.send(&what, |http| http.get(&url)).await }
    })
    .await?;
    csal_http::read_json(resp, &what).await
}

pub(crate) async fn stat(client: &BoxClient, object_id: &str) -> Result<ObjectMeta> {
    let file = stat_raw(client, object_id).await?;
    Ok(meta_from(object_id.to_owned(), &file))
}
