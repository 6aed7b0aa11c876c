//! Downloads (GET `:/content` → 302 to a pre-authenticated URL, fetched
//! with `Range`) and stat (GET the driveItem).

use csal_core::{ByteRange, ByteStream, ObjectMeta, Result, StorageError};
use serde_json::Value;

use crate::client::{GraphClient, parse_time};
use crate::error::classify;

pub(crate) async fn read(client: &GraphClient, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    if let Some(r) = &range {
        r.check()?;
    }
    let what = format!("download '{object_id}'");
    let url = client.action_url(object_id, "content");
    let range_header = range.map(|r| r.to_http_header());
    let first = client
        .api
        .call(&what, |http| {
            let req = http.get(&url);
            match &range_header {
                Some(h) => req.header("Range", h),
                None => req,
            }
        })
        .await?;
    // A 302 to a pre-authenticated download URL: fetched without the token.
    let resp =
        csal_http::follow_download(client.api.http(), first, range, &what).await?.map_err(|e| classify(e, &what))?;
    csal_http::ranged_body(resp, range, None, &what)
}

/// Object metadata of a file driveItem; `None` for folders.
pub(crate) fn meta_from(object_id: String, item: &Value) -> Option<ObjectMeta> {
    item.get("file")?;
    let mut meta = ObjectMeta::new(object_id, item.get("size").and_then(Value::as_u64).unwrap_or(0));
    meta.modified = item.get("lastModifiedDateTime").and_then(Value::as_str).and_then(parse_time);
    meta.etag = item.get("eTag").and_then(Value::as_str).map(str::to_owned);
    if let Some(sha) = item["file"]["hashes"]["sha256Hash"].as_str() {
        meta.checksum = Some(csal_core::Checksum { algorithm: "sha256".into(), value: sha.to_lowercase() });
    }
    Some(meta)
}

pub(crate) async fn stat_raw(client: &GraphClient, object_id: &str) -> Result<Value> {
    let what = format!("stat '{object_id}'");
    let url = client.item_url(object_id);
    client.api.json(&what, |http| http.get(&url)).await
}

pub(crate) async fn stat(client: &GraphClient, object_id: &str) -> Result<ObjectMeta> {
    let item = stat_raw(client, object_id).await?;
    meta_from(object_id.to_owned(), &item)
        .ok_or_else(|| StorageError::not_found(format!("stat '{object_id}': not a file (a folder?)")))
}
