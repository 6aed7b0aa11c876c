//! Downloads (GET `:/content` → 302 to a pre-authenticated URL, fetched
//! with `Range`) and stat (GET the driveItem).

use csal_core::{ByteRange, ByteStream, ObjectMeta, Result, StorageError, check_object_id};
use futures::StreamExt;
use serde_json::Value;

use crate::client::{GraphClient, finish, parse_time};
use crate::error::{classify, transport};

pub(crate) async fn read(client: &GraphClient, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    check_object_id(object_id)?;
    if let Some(r) = &range {
        r.check()?;
    }
    let what = format!("download '{object_id}'");
    let url = client.action_url(object_id, "content");
    let range_header = range.map(|r| r.to_http_header());
    let first = client
        .send(&what, |t| {
            let req = GraphClient::bearer(client.http.get(&url), t);
            match &range_header {
                Some(h) => req.header("Range", h),
                None => req,
            }
        })
        .await?
        .map_err(|e| classify(e, &what))?;
    let resp = if first.status().is_redirection() {
        let location = first
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| StorageError::transient(format!("{what}: redirect without a Location")))?
            .to_owned();
        let mut req = client.http.get(&location);
        if let Some(h) = &range_header {
            req = req.header("Range", h);
        }
        let resp = req.send().await.map_err(|e| transport(e, &what))?;
        finish(resp, &what).await?.map_err(|e| classify(e, &what))?
    } else {
        first
    };
    let partial = resp.status() == reqwest::StatusCode::PARTIAL_CONTENT;
    let len = resp.content_length();
    let stream = resp.bytes_stream().map(|r| r.map_err(|e| transport(e, "download")));
    ByteStream::from_ranged_answer(stream, range, partial, len, None)
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
    check_object_id(object_id)?;
    let what = format!("stat '{object_id}'");
    let url = client.item_url(object_id);
    client.json(&what, |t| GraphClient::bearer(client.http.get(&url), t)).await
}

pub(crate) async fn stat(client: &GraphClient, object_id: &str) -> Result<ObjectMeta> {
    let item = stat_raw(client, object_id).await?;
    meta_from(object_id.to_owned(), &item)
        .ok_or_else(|| StorageError::not_found(format!("stat '{object_id}': not a file (a folder?)")))
}
