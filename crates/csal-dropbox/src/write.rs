//! Uploads: one `/2/files/upload` call for a body of at most one chunk, an
//! upload session (`start` / `append_v2` / `finish`) for anything larger.
//! Memory: at most two chunks (the one being sent and the next one being
//! filled). `mode: add` + `autorename: false` + `strict_conflict: true`:
//! Dropbox refuses to replace anything, so a clash is `AlreadyExists`.

use bytes::Bytes;
use csal_core::{ByteStream, Result, StorageError, WriteMeta, WriteReceipt, object_id_from_hint};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::client::{Call, DropboxClient, Host};
use crate::error::classify;

fn commit_info(path: &str) -> Value {
    json!({ "path": path, "mode": "add", "autorename": false, "mute": true, "strict_conflict": true })
}

pub(crate) async fn write(
    client: &DropboxClient,
    chunk_size: usize,
    body: ByteStream,
    meta: WriteMeta,
) -> Result<WriteReceipt> {
    let object_id = object_id_from_hint(&meta.key_hint);
    let path = client.path_of(&object_id);
    let what = format!("upload '{object_id}'");
    let mut parts = Box::pin(body.into_parts(chunk_size));
    let first = parts.next().await.transpose()?.unwrap_or_default();
    let second = if first.len() == chunk_size { parts.next().await.transpose()? } else { None };

    let result = match second {
        None => {
            // Small body: one call.
            let size = first.len() as u64;
            let arg = commit_info(&path);
            let call = Call { host: Host::Content, endpoint: "files/upload", arg: &arg, body: first, range: None };
            client.json(&call, &what).await.map(|m| (m, size))?
        }
        Some(second) => {
            let arg = json!({ "close": false });
            let call = Call {
                host: Host::Content,
                endpoint: "files/upload_session/start",
                arg: &arg,
                body: first.clone(),
                range: None,
            };
            let started = client.json(&call, &what).await?;
            let session_id = started
                .get("session_id")
                .and_then(Value::as_str)
                .ok_or_else(|| StorageError::transient(format!("{what}: Dropbox gave no session_id")))?
                .to_owned();
            let mut offset = first.len() as u64;
            drop(first);
            let mut pending: Bytes = second;
            while let Some(next) = parts.next().await.transpose()? {
                append(client, &session_id, offset, pending.clone(), &what).await?;
                offset += pending.len() as u64;
                pending = next;
            }
            let size = offset + pending.len() as u64;
            let arg = json!({
                "cursor": { "session_id": session_id, "offset": offset },
                "commit": commit_info(&path),
            });
            let call = Call {
                host: Host::Content,
                endpoint: "files/upload_session/finish",
                arg: &arg,
                body: pending,
                range: None,
            };
            client.json(&call, &what).await.map(|m| (m, size))?
        }
    };
    let (metadata, size) = result;
    if let Some(got) = metadata.get("size").and_then(Value::as_u64) {
        if got != size {
            return Err(StorageError::integrity(format!("{what}: Dropbox stored {got} bytes, we sent {size}")));
        }
    }
    let etag = metadata.get("rev").and_then(Value::as_str).map(str::to_owned);
    Ok(WriteReceipt { object_id, size, checksum: None, etag, instance: None })
}

/// One `append_v2`. An `incorrect_offset` whose `correct_offset` is exactly
/// past this chunk means Dropbox already has it (our earlier try's answer
/// was lost): that is success.
async fn append(client: &DropboxClient, session_id: &str, offset: u64, chunk: Bytes, what: &str) -> Result<()> {
    let len = chunk.len() as u64;
    let arg = json!({ "cursor": { "session_id": session_id, "offset": offset }, "close": false });
    let call =
        Call { host: Host::Content, endpoint: "files/upload_session/append_v2", arg: &arg, body: chunk, range: None };
    match client.send(&call, what).await? {
        Ok(_) => Ok(()),
        Err(e) if e.is("incorrect_offset") => {
            let correct = e.body.get("error").and_then(|x| x.get("correct_offset")).and_then(Value::as_u64);
            if correct == Some(offset + len) { Ok(()) } else { Err(classify(e, what)) }
        }
        Err(e) => Err(classify(e, what)),
    }
}
