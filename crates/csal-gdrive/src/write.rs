//! Resumable uploads ("Upload file data" → resumable): one POST with the
//! metadata opens a session, then PUTs of `chunk_size` bytes (multiples of
//! 256 KiB) with `Content-Range: bytes s-e/*` until the last one, which
//! carries the total. Memory: at most two chunks. A failed upload is
//! cancelled (DELETE on the session URI); nothing becomes visible.

use bytes::Bytes;
use csal_core::{ByteStream, Result, StorageError, WriteMeta, WriteReceipt, object_id_from_hint};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::client::DriveClient;
use crate::error::classify;

pub(crate) async fn write(
    client: &DriveClient,
    chunk: usize,
    body: ByteStream,
    meta: WriteMeta,
) -> Result<WriteReceipt> {
    let object_id = object_id_from_hint(&meta.key_hint);
    let what = format!("upload '{object_id}'");
    let (dir, name) = object_id.rsplit_once('/').unwrap_or(("", &object_id));
    let parent = match client.folder_id(dir, true).await {
        Ok(Some(id)) => id,
        Ok(None) => return Err(StorageError::transient(format!("{what}: folder could not be created"))),
        Err(e) => {
            client.forget_folders();
            return Err(e);
        }
    };
    let mut metadata = json!({ "name": name, "parents": [parent] });
    if let Some(ct) = &meta.content_type {
        metadata["mimeType"] = json!(ct);
    }
    let url = client.upload_url();
    let mut query = client.common();
    query.push(("uploadType", "resumable".to_owned()));
    query.push(("fields", crate::client::FILE_FIELDS.to_owned()));
    let body_text = metadata.to_string();
    let started = client
        .api
        .send(&what, |http| {
            http.post(&url)
                .query(&query)
                .header("Content-Type", "application/json; charset=UTF-8")
                .body(body_text.clone())
        })
        .await?;
    let started = match started {
        Ok(r) => r,
        Err(e) => {
            if e.status.as_u16() == 404 {
                client.forget_folders();
            }
            return Err(classify(e, &what));
        }
    };
    let session = started
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| StorageError::transient(format!("{what}: no resumable session URI")))?
        .to_owned();
    let result = send_chunks(client, &session, chunk, body, &what).await;
    if result.is_err() {
        let _ = client.api.http().delete(&session).send().await;
    }
    let (file, size) = result?;
    if let Some(got) = file["size"].as_str().and_then(|s| s.parse::<u64>().ok())
        && got != size
    {
        return Err(StorageError::integrity(format!("{what}: Drive stored {got} bytes, we sent {size}")));
    }
    Ok(WriteReceipt { object_id, size, checksum: None, etag: None, instance: None })
}

async fn put(client: &DriveClient, session: &str, range: String, data: Bytes, what: &str) -> Result<reqwest::Response> {
    let resp = client
        .api
        .http()
        .put(session)
        .header("Content-Range", range)
        .body(data)
        .send()
        .await
        .map_err(|e| csal_http::transport_error(e, what))?;
    csal_http::ErrorAnswer::check(resp).await.map_err(|e| classify(e, what))
}

async fn send_chunks(
    client: &DriveClient,
    session: &str,
    chunk: usize,
    body: ByteStream,
    what: &str,
) -> Result<(Value, u64)> {
    let mut parts = Box::pin(body.into_parts(chunk));
    let mut offset = 0u64;
    let Some(mut pending) = parts.next().await.transpose()? else {
        let resp = put(client, session, "bytes */0".to_owned(), Bytes::new(), what).await?;
        return Ok((csal_http::read_json(resp, what).await?, 0));
    };
    while let Some(next) = parts.next().await.transpose()? {
        let len = pending.len() as u64;
        let resp = put(client, session, format!("bytes {offset}-{}/*", offset + len - 1), pending, what).await?;
        if resp.status().as_u16() != 308 {
            return Err(StorageError::transient(format!("{what}: upload ended early (HTTP {})", resp.status())));
        }
        let expect = format!("bytes=0-{}", offset + len - 1);
        let got = resp.headers().get("range").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if got != expect {
            return Err(StorageError::transient(format!("{what}: Drive has '{got}', expected '{expect}'")));
        }
        offset += len;
        pending = next;
    }
    let len = pending.len() as u64;
    let total = offset + len;
    let resp = put(client, session, format!("bytes {offset}-{}/{total}", total - 1), pending, what).await?;
    if !resp.status().is_success() {
        return Err(StorageError::transient(format!("{what}: last chunk answered HTTP {}", resp.status())));
    }
    Ok((csal_http::read_json(resp, what).await?, total))
}
