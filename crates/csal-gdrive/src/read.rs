//! Downloads (`files.get?alt=media` with `Range`) and stat (`files.get`).

use csal_core::{ByteRange, ByteStream, ObjectMeta, Result, StorageError};
use serde_json::Value;

use crate::client::{DriveClient, parse_time};

pub(crate) async fn read(client: &DriveClient, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    if let Some(r) = &range {
        r.check()?;
    }
    let file = client.file(object_id).await?;
    let id = file["id"].as_str().ok_or_else(|| StorageError::transient("file without an id"))?.to_owned();
    let size = file["size"].as_str().and_then(|s| s.parse::<u64>().ok());
    let what = format!("download '{object_id}'");
    let url = format!("{}/{id}", client.files_url());
    let mut query = client.common();
    query.push(("alt", "media".to_owned()));
    let header = range.map(|r| r.to_http_header());
    let resp = client
        .api
        .call(&what, |http| {
            let req = http.get(&url).query(&query);
            match &header {
                Some(h) => req.header("Range", h),
                None => req,
            }
        })
        .await?;
    csal_http::ranged_body(resp, range, size, &what)
}

pub(crate) fn meta_from(object_id: String, file: &Value) -> ObjectMeta {
    let mut meta = ObjectMeta::new(object_id, file["size"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0));
    meta.modified = file["modifiedTime"].as_str().and_then(parse_time);
    meta.content_type = file["mimeType"].as_str().map(str::to_owned);
    if let Some(md5) = file["md5Checksum"].as_str() {
        meta.checksum = Some(csal_core::Checksum { algorithm: "md5".into(), value: md5.to_lowercase() });
    }
    meta
}

pub(crate) async fn stat(client: &DriveClient, object_id: &str) -> Result<ObjectMeta> {
    let file = client.file(object_id).await?;
    Ok(meta_from(object_id.to_owned(), &file))
}
