//! Uploads: one PUT `:/content` for a body of at most one fragment; an
//! upload session (createUploadSession + PUTs with `Content-Range` to the
//! pre-authenticated `uploadUrl`) for anything larger. Every commit uses
//! `@microsoft.graph.conflictBehavior: fail`, so nothing is overwritten.
//!
//! Graph needs the total size in every fragment's `Content-Range`. A body
//! of unknown size that is larger than one fragment is first spooled to a
//! temporary file (memory stays bounded; disk holds the object once).
//! Memory: at most two fragments. A failed session is cancelled (DELETE).
//! The one PUT is sent again from memory for a one-shot body, and after a
//! lost answer the item is looked for first (`RetryPolicy::resend_write`).

use bytes::Bytes;
use csal_core::{ByteStream, Result, RetryPolicy, StorageError, WriteMeta, WriteReceipt, object_id_from_hint};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::client::GraphClient;
use crate::error::classify;

pub(crate) async fn write(
    client: &GraphClient,
    chunk: usize,
    body: ByteStream,
    meta: WriteMeta,
) -> Result<WriteReceipt> {
    let object_id = object_id_from_hint(&meta.key_hint);
    let what = format!("upload '{object_id}'");
    let known_size = body.size();
    let attempts =
        RetryPolicy::single_request_attempts(body.is_replayable(), RetryPolicy::in_place_default().max_attempts);
    let mut parts = Box::pin(body.into_parts(chunk));
    let first = parts.next().await.transpose()?.unwrap_or_default();
    let second = if first.len() == chunk { parts.next().await.transpose()? } else { None };

    let item = match second {
        None => {
            let size = first.len() as u64;
            let url = format!("{}?@microsoft.graph.conflictBehavior=fail", client.action_url(&object_id, "content"));
            let put = |_| {
                client.api.json(&what, |http| {
                    http.put(&url).header("Content-Type", "application/octet-stream").body(first.clone())
                })
            };
            // After a lost answer (or a resend refused because the name is
            // taken) the item is looked for: the id is fresh, so an item of
            // our size there is this write's, and it is neither failed nor,
            // through the retry layer's retry under a new id, stored twice.
            let look = || async {
                let item = crate::read::stat_raw(client, &object_id).await?;
                Ok((item.get("size").and_then(Value::as_u64) == Some(size)).then_some(item))
            };
            (RetryPolicy::in_place(attempts).resend_write(&what, look, put).await?, size)
        }
        Some(second) => {
            let head = futures::stream::iter([Ok(first), Ok(second)]);
            match known_size {
                Some(total) => session(client, &object_id, total, head.chain(parts), &what).await?,
                None => {
                    let (file, total) = spool(head.chain(parts)).await?;
                    let reopened = ByteStream::from_file(file.path()).await?;
                    let out = session(client, &object_id, total, reopened.into_parts(chunk), &what).await;
                    drop(file);
                    out?
                }
            }
        }
    };
    let (item, size) = item;
    if let Some(got) = item.get("size").and_then(Value::as_u64)
        && got != size
    {
        return Err(StorageError::integrity(format!("{what}: Graph stored {got} bytes, we sent {size}")));
    }
    let etag = item.get("eTag").and_then(Value::as_str).map(str::to_owned);
    Ok(WriteReceipt { object_id, size, checksum: None, etag, instance: None })
}

async fn spool(mut parts: impl Stream<Item = Result<Bytes>> + Unpin) -> Result<(tempfile::NamedTempFile, u64)> {
    let file = tempfile::NamedTempFile::new()?;
    let mut out = tokio::fs::File::create(file.path()).await?;
    let mut total = 0u64;
    while let Some(part) = parts.next().await {
        let part = part?;
        out.write_all(&part).await?;
        total += part.len() as u64;
    }
    out.flush().await?;
    Ok((file, total))
}

async fn session(
    client: &GraphClient,
    object_id: &str,
    total: u64,
    fragments: impl Stream<Item = Result<Bytes>>,
    what: &str,
) -> Result<(Value, u64)> {
    let url = client.action_url(object_id, "createUploadSession");
    let arg = json!({ "item": { "@microsoft.graph.conflictBehavior": "fail" } });
    let created = client
        .api
        .json(what, |http| http.post(&url).header("Content-Type", "application/json").body(arg.to_string()))
        .await?;
    let upload_url = created
        .get("uploadUrl")
        .and_then(Value::as_str)
        .ok_or_else(|| StorageError::transient(format!("{what}: Graph gave no uploadUrl")))?
        .to_owned();
    let result = send_fragments(client, &upload_url, total, fragments, what).await;
    if result.is_err() {
        // Cancel: the partial upload must not linger (best effort).
        let _ = client.api.http().delete(&upload_url).send().await;
    }
    result
}

async fn send_fragments(
    client: &GraphClient,
    upload_url: &str,
    total: u64,
    fragments: impl Stream<Item = Result<Bytes>>,
    what: &str,
) -> Result<(Value, u64)> {
    let mut fragments = std::pin::pin!(fragments);
    let mut offset = 0u64;
    while let Some(fragment) = fragments.next().await {
        let fragment = fragment?;
        let len = fragment.len() as u64;
        if offset + len > total {
            return Err(StorageError::integrity(format!("{what}: body is longer than its declared {total} bytes")));
        }
        // No Authorization header: uploadUrl is pre-authenticated.
        let resp = client
            .api
            .http()
            .put(upload_url)
            .header("Content-Range", format!("bytes {offset}-{}/{total}", offset + len - 1))
            .body(fragment)
            .send()
            .await
            .map_err(|e| csal_http::transport_error(e, what))?;
        let resp = csal_http::ErrorAnswer::check(resp).await.map_err(|e| classify(e, what))?;
        offset += len;
        let status = resp.status().as_u16();
        if offset == total {
            if status == 200 || status == 201 {
                return Ok((csal_http::read_json(resp, what).await?, total));
            }
            return Err(StorageError::transient(format!("{what}: last fragment answered HTTP {status}")));
        }
    }
    Err(StorageError::integrity(format!("{what}: body ended after {offset} of its declared {total} bytes")))
}
