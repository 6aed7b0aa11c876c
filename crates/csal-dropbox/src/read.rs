//! Downloads (`/2/files/download`, `Range` for partial reads) and stat
//! (`/2/files/get_metadata`).

use csal_core::{ByteRange, ByteStream, ObjectMeta, Result, StorageError, check_object_id};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::client::{Call, DropboxClient, Host, parse_time};
use crate::error::{classify, transport};

pub(crate) async fn read(client: &DropboxClient, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    check_object_id(object_id)?;
    if let Some(r) = &range {
        r.check()?;
    }
    let what = format!("download '{object_id}'");
    let arg = json!({ "path": client.path_of(object_id) });
    let call = Call {
        host: Host::Content,
        endpoint: "files/download",
        arg: &arg,
        body: bytes::Bytes::new(),
        range: range.map(|r| r.to_http_header()),
    };
    let resp = match client.send(&call, &what).await? {
        Ok(resp) => resp,
        Err(e) => return Err(classify(e, &what)),
    };
    let status = resp.status().as_u16();
    let result: Value = resp
        .headers()
        .get("dropbox-api-result")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or(Value::Null);
    let full_size = result.get("size").and_then(Value::as_u64);
    let content_length = resp.content_length();
    let stream = resp.bytes_stream().map(move |r| r.map_err(|e| transport(e, "download")));
    match (range, status) {
        (Some(_), 206) | (None, _) => {
            let len = content_length.or(if range.is_none() { full_size } else { None });
            let body = ByteStream::new(stream, len);
            Ok(match len {
                Some(len) => body.expect_len(len),
                None => body,
            })
        }
        (Some(r), _) => {
            // The server ignored Range and sent the whole file: cut it here.
            let size = full_size.or(content_length).ok_or_else(|| {
                StorageError::transient(format!("{what}: full answer to a ranged read without a size"))
            })?;
            let span = r.resolve(size)?;
            Ok(slice(ByteStream::new(stream, Some(size)).expect_len(size), span.start, span.end - span.start))
        }
    }
}

/// Skip `skip` bytes of `body` and keep the next `take`.
fn slice(body: ByteStream, skip: u64, take: u64) -> ByteStream {
    let stream = futures::stream::unfold((body, skip, take), |(mut body, mut skip, mut take)| async move {
        loop {
            if take == 0 {
                return None;
            }
            let mut chunk = match body.next().await? {
                Ok(c) => c,
                Err(e) => return Some((Err(e), (body, 0, 0))),
            };
            if skip >= chunk.len() as u64 {
                skip -= chunk.len() as u64;
                continue;
            }
            let _ = chunk.split_to(skip as usize);
            skip = 0;
            if chunk.len() as u64 > take {
                chunk.truncate(take as usize);
            }
            take -= chunk.len() as u64;
            return Some((Ok(chunk), (body, skip, take)));
        }
    });
    ByteStream::new(stream, Some(take)).expect_len(take)
}

pub(crate) fn meta_from(client: &DropboxClient, m: &Value) -> Option<ObjectMeta> {
    if m.get(".tag").and_then(Value::as_str) != Some("file") {
        return None;
    }
    let path = m.get("path_display").and_then(Value::as_str)?;
    let id = client.id_of(path)?;
    let mut meta = ObjectMeta::new(id, m.get("size").and_then(Value::as_u64).unwrap_or(0));
    meta.modified = m.get("server_modified").and_then(Value::as_str).and_then(parse_time);
    meta.etag = m.get("rev").and_then(Value::as_str).map(str::to_owned);
    if let Some(hash) = m.get("content_hash").and_then(Value::as_str) {
        meta.checksum = Some(csal_core::Checksum { algorithm: "dropbox_content_hash".into(), value: hash.to_owned() });
    }
    Some(meta)
}

pub(crate) async fn stat_raw(client: &DropboxClient, object_id: &str) -> Result<Value> {
    check_object_id(object_id)?;
    let what = format!("stat '{object_id}'");
    let arg = json!({ "path": client.path_of(object_id) });
    let call =
        Call { host: Host::Api, endpoint: "files/get_metadata", arg: &arg, body: bytes::Bytes::new(), range: None };
    client.json(&call, &what).await
}

pub(crate) async fn stat(client: &DropboxClient, object_id: &str) -> Result<ObjectMeta> {
    let m = stat_raw(client, object_id).await?;
    let mut meta = meta_from(client, &m)
        .ok_or_else(|| StorageError::not_found(format!("stat '{object_id}': not a file (a folder?)")))?;
    // Keep the caller's spelling (Dropbox may report another case).
    meta.object_id = object_id.to_owned();
    Ok(meta)
}
