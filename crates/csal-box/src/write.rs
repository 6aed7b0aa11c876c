//! Uploads. A body under the session threshold is one multipart
//! `POST /files/content` (`attributes` JSON + the bytes, `Content-MD5`
//! carrying its SHA-1 as Box asks); anything larger is a chunked upload
//! session: `POST /files/upload_sessions` (Box answers with the part size),
//! one `PUT` per part with `Content-Range` and `Digest: sha=<base64 SHA-1>`,
//! then `POST .../commit` with the parts list and the whole file's SHA-1.
//!
//! Nothing is ever overwritten: uploads name a parent folder and a new
//! name, and Box answers 409 `item_name_in_use` rather than replacing a
//! file (a new version would need `POST /files/{id}/content`, never used
//! here). That 409 is returned as `AlreadyExists`, never retried.
//!
//! Box needs the total size when the session is created. A body of unknown
//! size that reaches the threshold is first spooled to a temporary file
//! (memory stays bounded; disk holds the object once). Memory: the
//! threshold for direct uploads; at most two parts for sessions. A session
//! that fails, or whose upload future is dropped, is aborted (`DELETE`).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use csal_core::{ByteStream, Checksum, Result, StorageError, WriteMeta, WriteReceipt, object_id_from_hint};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use tokio::io::AsyncWriteExt;

use crate::client::{BoxClient, FILE_FIELDS};
use crate::error::classify;

/// How many times a commit answered 202 (parts still being processed) is
/// tried again, after Box's `Retry-After`.
const COMMIT_TRIES: usize = 20;

pub(crate) async fn write(
    client: &Arc<BoxClient>,
    threshold: usize,
    body: ByteStream,
    meta: WriteMeta,
) -> Result<WriteReceipt> {
    let object_id = object_id_from_hint(&meta.key_hint);
    let what = format!("upload '{object_id}'");
    let (dir, name) = object_id.rsplit_once('/').unwrap_or(("", &object_id));
    let parent = resolve_parent(client, dir, &what).await?;

    let (file, sha1) = match body.size() {
        Some(total) if total >= threshold as u64 => session(client, dir, &parent, name, total, body, &what).await?,
        _ => {
            let mut parts = Box::pin(body.into_parts(threshold));
            let first = parts.next().await.transpose()?.unwrap_or_default();
            let second = if first.len() == threshold { parts.next().await.transpose()? } else { None };
            match second {
                None => direct(client, dir, &parent, name, first, &what).await?,
                Some(second) => {
                    let head = futures::stream::iter([Ok(first), Ok(second)]);
                    let (spooled, total) = spool(head.chain(parts)).await?;
                    let reopened = ByteStream::from_file(spooled.path()).await?;
                    let out = session(client, dir, &parent, name, total, reopened, &what).await;
                    drop(spooled);
                    out?
                }
            }
        }
    };
    let size = file.get("size").and_then(Value::as_u64).unwrap_or(0);
    if let Some(id) = file.get("id").and_then(Value::as_str) {
        client.remember_file(&object_id, id);
    }
    let etag = file.get("etag").and_then(Value::as_str).map(str::to_owned);
    Ok(WriteReceipt {
        object_id,
        size,
        checksum: Some(Checksum { algorithm: "sha1".into(), value: sha1 }),
        etag,
        instance: None,
    })
}

/// Check Box's file against what we sent; on a mismatch the stored file is
/// deleted (best effort) so no corrupt object stays visible.
async fn verify(client: &BoxClient, file: Value, size: u64, sha1: &str, what: &str) -> Result<(Value, String)> {
    let got_size = file.get("size").and_then(Value::as_u64);
    let got_sha1 = file.get("sha1").and_then(Value::as_str).map(str::to_lowercase);
    let size_ok = got_size.is_none_or(|s| s == size);
    let sha_ok = got_sha1.as_deref().is_none_or(|s| s == sha1);
    if size_ok && sha_ok {
        return Ok((file, sha1.to_owned()));
    }
    if let Some(id) = file.get("id").and_then(Value::as_str) {
        let url = client.url(&format!("/files/{id}"));
        let _ = client.api.send(what, |http| http.delete(&url)).await;
    }
    Err(StorageError::integrity(format!(
        "{what}: Box stored {} bytes with SHA-1 {}, we sent {size} bytes with SHA-1 {sha1}",
        got_size.map_or("?".into(), |s| s.to_string()),
        got_sha1.as_deref().unwrap_or("?"),
    )))
}

fn the_file(answer: &Value, what: &str) -> Result<Value> {
    answer
        .get("entries")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .cloned()
        .ok_or_else(|| StorageError::transient(format!("{what}: Box's answer names no file")))
}

/// A multipart form: `attributes` (name, parent) first, then the file.
/// Returns the form and where the file's bytes start in it.
fn build_form(boundary: &str, parent: &str, name: &str, data: &[u8]) -> (Bytes, usize) {
    let attributes = json!({ "name": name, "parent": { "id": parent } }).to_string();
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"attributes\"\r\n\r\n{attributes}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"upload\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let mut form = BytesMut::with_capacity(head.len() + data.len() + tail.len());
    form.extend_from_slice(head.as_bytes());
    form.extend_from_slice(data);
    form.extend_from_slice(tail.as_bytes());
    (form.freeze(), head.len())
}

/// One multipart `POST /files/content`. When the cached parent folder is
/// gone (404: deleted in Box meanwhile), the folders are resolved (and
/// created) again and the upload sent once more: a 404 stored nothing.
async fn direct(
    client: &BoxClient,
    dir: &str,
    parent: &str,
    name: &str,
    data: Bytes,
    what: &str,
) -> Result<(Value, String)> {
    let sha1 = hex::encode(Sha1::digest(&data));
    let size = data.len();
    // Derived from the content's digest: it cannot occur in the content
    // except by a SHA-1 preimage of itself.
    let boundary = format!("csal-box-{sha1}");
    let (form, at) = build_form(&boundary, parent, name, &data);
    drop(data);
    let url = client.upload(&format!("/files/content?fields={FILE_FIELDS}"));
    let (url, boundary_ref, sha1_ref) = (&url, &boundary, &sha1);
    let post = |form: Bytes| async move {
        client
            .api
            .json(what, |http| {
                http.post(url)
                    .header("Content-Type", format!("multipart/form-data; boundary={boundary_ref}"))
                    .header("Content-MD5", sha1_ref)
                    .body(form.clone())
            })
            .await
    };
    let answer = match post(form.clone()).await {
        Err(e) if e.is_not_found() && client.forget_folders() => {
            let parent = resolve_parent(client, dir, what).await?;
            let (again, _) = build_form(&boundary, &parent, name, &form[at..at + size]);
            drop(form);
            post(again).await?
        }
        other => other?,
    };
    let file = the_file(&answer, what)?;
    verify(client, file, size as u64, &sha1, what).await
}

pub(crate) async fn resolve_parent(client: &BoxClient, dir: &str, what: &str) -> Result<String> {
    client
        .folder_id(dir, true)
        .await?
        .ok_or_else(|| StorageError::transient(format!("{what}: the folder could not be created")))
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

/// Aborts an upload session when dropped while armed: a cancelled upload
/// future leaves no session (and so no partial file) behind.
struct AbortOnDrop {
    client: Arc<BoxClient>,
    url: String,
    armed: bool,
}

impl AbortOnDrop {
    async fn abort(mut self) {
        self.armed = false;
        abort(&self.client, &self.url).await;
    }
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            let url = std::mem::take(&mut self.url);
            rt.spawn(async move { abort(&client, &url).await });
        }
    }
}

async fn abort(client: &BoxClient, url: &str) {
    let what = "abort the upload session";
    match client.api.send(what, |http| http.delete(url)).await {
        Ok(Ok(_)) => tracing::debug!("Box upload session aborted"),
        Ok(Err(e)) if e.status.as_u16() == 404 => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not abort a Box upload session; Box expires it within a day"),
        Err(e) => tracing::warn!(error = %e, "could not abort a Box upload session; Box expires it within a day"),
    }
}

fn endpoint(session: &Value, key: &str, fallback: String) -> String {
    session["session_endpoints"][key].as_str().map(str::to_owned).unwrap_or(fallback)
}

async fn session(
    client: &Arc<BoxClient>,
    dir: &str,
    parent: &str,
    name: &str,
    total: u64,
    body: ByteStream,
    what: &str,
) -> Result<(Value, String)> {
    let url = client.upload("/files/upload_sessions");
    let create = |parent: String| {
        let arg = json!({ "folder_id": parent, "file_size": total, "file_name": name }).to_string();
        let url = &url;
        async move {
            client
                .api
                .json(what, |http| http.post(url).header("Content-Type", "application/json").body(arg.clone()))
                .await
        }
    };
    // A 404 here is a cached parent folder deleted meanwhile: resolve again.
    let created = match create(parent.to_owned()).await {
        Err(e) if e.is_not_found() && client.forget_folders() => {
            create(resolve_parent(client, dir, what).await?).await?
        }
        other => other?,
    };
    let id = created["id"]
        .as_str()
        .ok_or_else(|| StorageError::transient(format!("{what}: Box gave no upload session id")))?
        .to_owned();
    let part_size = created["part_size"]
        .as_u64()
        .filter(|&p| p > 0 && p <= 1 << 30)
        .ok_or_else(|| StorageError::transient(format!("{what}: Box gave no usable part_size")))?
        as usize;
    let base = client.upload(&format!("/files/upload_sessions/{id}"));
    let guard = AbortOnDrop { client: client.clone(), url: endpoint(&created, "abort", base.clone()), armed: true };
    let part_url = endpoint(&created, "upload_part", base.clone());
    let commit_url = endpoint(&created, "commit", format!("{base}/commit"));
    let result = send_parts(client, &part_url, &commit_url, total, part_size, body, what).await;
    match result {
        Ok(done) => {
            guard.disarm();
            Ok(done)
        }
        Err(e) => {
            guard.abort().await;
            Err(e)
        }
    }
}

fn digest_header(sha1: &[u8]) -> String {
    format!("sha={}", base64::engine::general_purpose::STANDARD.encode(sha1))
}

async fn send_parts(
    client: &BoxClient,
    part_url: &str,
    commit_url: &str,
    total: u64,
    part_size: usize,
    body: ByteStream,
    what: &str,
) -> Result<(Value, String)> {
    let mut parts = std::pin::pin!(body.into_parts(part_size));
    let mut whole = Sha1::new();
    let mut committed: Vec<Value> = Vec::new();
    let mut offset = 0u64;
    while let Some(part) = parts.next().await {
        let part = part?;
        let len = part.len() as u64;
        if offset + len > total {
            return Err(StorageError::integrity(format!("{what}: body is longer than its declared {total} bytes")));
        }
        whole.update(&part);
        let sha = Sha1::digest(&part);
        let digest = digest_header(&sha);
        let range = format!("bytes {offset}-{}/{total}", offset + len - 1);
        let answer = client
            .api
            .json(what, |http| {
                http.put(part_url)
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", &range)
                    .header("Digest", &digest)
                    .body(part.clone())
            })
            .await?;
        let uploaded = answer.get("part").cloned().unwrap_or(Value::Null);
        let ours = hex::encode(sha);
        if let Some(theirs) = uploaded.get("sha1").and_then(Value::as_str)
            && !theirs.eq_ignore_ascii_case(&ours)
        {
            return Err(StorageError::integrity(format!(
                "{what}: Box recorded SHA-1 {theirs} for the part at {offset}, we sent {ours}"
            )));
        }
        let part_id = uploaded
            .get("part_id")
            .and_then(Value::as_str)
            .ok_or_else(|| StorageError::transient(format!("{what}: Box gave no part_id")))?;
        committed.push(json!({ "part_id": part_id, "offset": offset, "size": len, "sha1": ours }));
        offset += len;
    }
    if offset != total {
        return Err(StorageError::integrity(format!(
            "{what}: body ended after {offset} of its declared {total} bytes"
        )));
    }
    let sha1 = whole.finalize();
    let digest = digest_header(&sha1);
    let sha1 = hex::encode(sha1);
    let arg = json!({ "parts": committed }).to_string();
    let commit_what = format!("{what} (commit)");
    for _ in 0..COMMIT_TRIES {
        let answer = client
            .api
            .send(&commit_what, |http| {
                http.post(commit_url)
                    .header("Content-Type", "application/json")
                    .header("Digest", &digest)
                    .body(arg.clone())
            })
            .await?;
        let resp = answer.map_err(|e| classify(e, &commit_what))?;
        if resp.status().as_u16() == 202 {
            // Parts still being processed: Box says when to try again.
            let wait = csal_http::retry_after(resp.headers()).unwrap_or(Duration::from_secs(1));
            tokio::time::sleep(wait.min(Duration::from_secs(30))).await;
            continue;
        }
        let file = the_file(&csal_http::read_json(resp, &commit_what).await?, &commit_what)?;
        return verify(client, file, total, &sha1, what).await;
    }
    Err(StorageError::transient(format!("{what}: Box kept answering that the parts are still being processed")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_header_is_base64_sha1() {
        // `printf abc | openssl sha1 -binary | base64`
        assert_eq!(digest_header(&Sha1::digest(b"abc")), "sha=qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    }
}
