//! Writes: one multipart request for bodies that fit in one chunk, else a
//! resumable upload sent chunk by chunk.
//!
//! Memory is bounded by about one chunk (the one being sent, kept until
//! GCS confirms it, as the body's own buffers) and one buffer of the next,
//! read ahead to know whether the current chunk is the last. Every write
//! creates a fresh object id with `ifGenerationMatch=0`, so it can never
//! replace an object. A body that fails mid-way cancels the session: GCS
//! only makes an object visible when the final chunk (with the total size)
//! arrives, and we send that only after the body ended cleanly.
//!
//! An interrupted chunk is resumed as the protocol says: ask the session
//! how much it has (`Content-Range: bytes */*`), then resend from there.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{StatusCode, Url};

use csal_core::{
    BodyPart, ByteStream, Checksum, Result, RetryPolicy, SentCrc32c, StorageError, WriteMeta, WriteReceipt,
    object_id_from_hint,
};

use crate::client::{GcsClient, ObjectResource};
use crate::error;

const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

pub(crate) async fn write(client: &GcsClient, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
    let name = object_id_from_hint(&meta.key_hint);
    let content_type = meta.content_type.clone().unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
    let resource = serde_json::json!({
        "name": name,
        "contentType": content_type,
        "metadata": meta.metadata,
    });
    let mut crc = SentCrc32c::of(&body);
    let single_attempts =
        RetryPolicy::single_request_attempts(body.is_replayable(), client.settings.resume_attempts + 1);
    let mut parts = Box::pin(body.into_chunked_parts_marking_last(client.settings.chunk_size));
    let (first, mut is_last) = match parts.next().await {
        Some(part) => part?,
        None => (BodyPart::default(), true),
    };
    first.chunks().iter().for_each(|c| crc.add(c));
    let written = if is_last {
        upload_single(client, &resource, &content_type, first, single_attempts).await?
    } else {
        let session = start_session(client, &resource, &content_type).await?;
        let mut offset = 0u64;
        let mut current = first;
        let outcome = loop {
            let total = is_last.then(|| offset + current.len() as u64);
            match upload_chunk(client, &session, offset, &current, total).await {
                Ok(Some(done)) => break Ok(done),
                Ok(None) if is_last => {
                    break Err(StorageError::transient(format!("write {name}: GCS did not finish the upload")));
                }
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            offset += current.len() as u64;
            // GCS has this chunk: free it before gathering the next.
            drop(std::mem::take(&mut current));
            (current, is_last) = match parts.next().await {
                Some(Ok(part)) => part,
                Some(Err(e)) => break Err(e),
                None => break Err(StorageError::transient(format!("write {name}: body ended unexpectedly"))),
            };
            current.chunks().iter().for_each(|c| crc.add(c));
        };
        match outcome {
            Ok(done) => done,
            Err(e) => {
                cancel_session(client, &session).await;
                return Err(e);
            }
        }
    };
    let crc = crc.of_sent(written.sent);
    verify(client, &name, written, crc).await
}

/// Check what GCS stored against what we sent (`crc`: its CRC32C, or why we
/// have none); remove it if it differs.
async fn verify(
    client: &GcsClient,
    name: &str,
    written: Written,
    crc: std::result::Result<u32, String>,
) -> Result<WriteReceipt> {
    let resource = written.resource;
    let mismatch = if let Err(why) = &crc {
        Some(why.clone())
    } else if resource.name != name {
        Some(format!("GCS stored the upload as '{}'", resource.name))
    } else if resource.size != written.sent {
        Some(format!("GCS stored {} of {} bytes", resource.size, written.sent))
    } else if resource.crc32c_value().is_some_and(|c| Ok(c) != crc) {
        Some("the CRC32C GCS computed differs from ours".to_owned())
    } else {
        None
    };
    if let Some(why) = mismatch {
        if resource.name == name {
            remove_generation(client, name, resource.generation.as_deref()).await;
        }
        return Err(StorageError::integrity(format!("write {name}: {why}; the object was removed")));
    }
    Ok(WriteReceipt {
        object_id: name.to_owned(),
        size: written.sent,
        checksum: crc.ok().map(Checksum::crc32c),
        etag: resource.etag.clone(),
        instance: None,
    })
}

/// What one `rewriteTo` call answers: done (with the new object), or a
/// token to call again with (large objects, other storage classes).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RewriteAnswer {
    done: bool,
    rewrite_token: Option<String>,
    resource: Option<ObjectResource>,
}

/// Server-side copy: `rewriteTo` with `ifGenerationMatch=0` (never replaces
/// an object), called again with its `rewriteToken` until GCS says done.
/// The new object gets the write's content type and metadata; its CRC32C
/// is GCS's own (the same bytes).
pub(crate) async fn copy(client: &GcsClient, object_id: &str, meta: &WriteMeta) -> Result<WriteReceipt> {
    let name = object_id_from_hint(&meta.key_hint);
    let what = format!("copy {object_id} to {name}");
    let content_type = meta.content_type.clone().unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
    let resource = serde_json::json!({ "contentType": content_type, "metadata": meta.metadata });
    let mut token: Option<String> = None;
    loop {
        let mut url = client.rewrite_url(object_id, &name)?;
        url.query_pairs_mut().append_pair("ifGenerationMatch", "0");
        if let Some(t) = &token {
            url.query_pairs_mut().append_pair("rewriteToken", t);
        }
        let answer: RewriteAnswer = client.send_json(client.http.post(url).json(&resource), &what).await?;
        if answer.done {
            let done = answer
                .resource
                .ok_or_else(|| StorageError::transient(format!("{what}: GCS said done but sent no object")))?;
            return Ok(WriteReceipt {
                object_id: name,
                size: done.size,
                checksum: done.crc32c_value().map(Checksum::crc32c),
                etag: done.etag,
                instance: None,
            });
        }
        token =
            Some(answer.rewrite_token.ok_or_else(|| {
                StorageError::transient(format!("{what}: GCS is not done and sent no rewrite token"))
            })?);
    }
}

struct Written {
    resource: ObjectResource,
    /// Bytes we sent in total.
    sent: u64,
}

/// A body of at most one chunk: one `uploadType=multipart` request, sent
/// again from memory up to `attempts` times (`RetryPolicy::resend_write`:
/// after a lost answer the object is looked for first).
async fn upload_single(
    client: &GcsClient,
    resource: &serde_json::Value,
    content_type: &str,
    data: BodyPart,
    attempts: u32,
) -> Result<Written> {
    let name = resource["name"].as_str().unwrap_or_default();
    let what = format!("write {name}");
    let mut url = client.upload_url()?;
    url.query_pairs_mut().append_pair("uploadType", "multipart").append_pair("ifGenerationMatch", "0");
    let boundary = format!("csal-{}", ulid::Ulid::new());
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n").as_bytes());
    head.extend_from_slice(resource.to_string().as_bytes());
    head.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes());
    let (head, tail) = (Bytes::from(head), Bytes::from(format!("\r\n--{boundary}--\r\n")));
    let len = (head.len() + data.len() + tail.len()) as u64;
    let sent = data.len() as u64;
    let send = |_| {
        let chunks = std::iter::once(head.clone()).chain(data.chunks().to_vec()).chain([tail.clone()]);
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks.map(Ok::<_, std::convert::Infallible>)));
        let request = client
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, format!("multipart/related; boundary={boundary}"))
            .header(CONTENT_LENGTH, len)
            .body(body);
        let what = &what;
        async move { Ok(Written { resource: client.send_json(request, what).await?, sent }) }
    };
    // The name is fresh (a new ULID): an object there is an earlier attempt's.
    let stored = || async {
        let look = format!("confirm {name}");
        let resource: ObjectResource = client.send_json(client.http.get(client.object_url(name)?), &look).await?;
        Ok((resource.size == sent).then_some(Written { resource, sent }))
    };
    RetryPolicy::in_place(attempts).resend_write(&what, stored, send).await
}

/// Open a resumable session; returns its URI.
async fn start_session(client: &GcsClient, resource: &serde_json::Value, content_type: &str) -> Result<Url> {
    let name = resource["name"].as_str().unwrap_or_default();
    let what = format!("write {name} (start resumable upload)");
    let mut url = client.upload_url()?;
    url.query_pairs_mut().append_pair("uploadType", "resumable").append_pair("ifGenerationMatch", "0");
    let request = client
        .http
        .post(url)
        .header(CONTENT_TYPE, "application/json; charset=UTF-8")
        .header("X-Upload-Content-Type", content_type)
        .body(resource.to_string());
    let response = client.send(request, &what).await?;
    let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let location = location.ok_or_else(|| StorageError::transient(format!("{what}: GCS gave no session URI")))?;
    Url::parse(&location).map_err(|e| StorageError::transient(format!("{what}: bad session URI")).with_source(e))
}

/// What the session says it has.
enum SessionState {
    /// Bytes `0..n` are stored; more are expected.
    Persisted(u64),
    /// The upload is finalised.
    Done(ObjectResource),
}

/// Send `data` (bytes `start..start+len`) and resume it after failures.
/// Returns the object when this was the final chunk.
async fn upload_chunk(
    client: &GcsClient,
    session: &Url,
    start: u64,
    data: &BodyPart,
    total: Option<u64>,
) -> Result<Option<Written>> {
    let end = start + data.len() as u64;
    let total_text = total.map_or_else(|| "*".to_owned(), |t| t.to_string());
    let what = format!("write (upload chunk at byte {start})");
    let mut from = start;
    // `resume_attempts` resumes after the first try.
    let resume = RetryPolicy::in_place(client.settings.resume_attempts + 1);
    let mut failures = 0u32;
    loop {
        let slice = data.skip((from - start) as usize);
        let range = if slice.is_empty() {
            format!("bytes */{total_text}")
        } else {
            format!("bytes {from}-{}/{total_text}", end - 1)
        };
        let request = client
            .http
            .put(session.clone())
            .timeout(client.settings.request_timeout)
            .header(CONTENT_RANGE, range)
            .header(CONTENT_LENGTH, slice.len() as u64)
            .body(csal_http::part_body(&slice));
        let failure = match client.send_raw(request, &what).await {
            Ok(response) => match interpret(response, &what).await {
                Ok(SessionState::Done(resource)) => return finished(client, resource, total, &what).await,
                Ok(SessionState::Persisted(n)) => match progress(n, start, end, &what)? {
                    None if total.is_none() => return Ok(None),
                    // Every byte is there but the session is not finalised:
                    // finalise it with an empty `bytes */TOTAL` request.
                    None if from < end => {
                        from = end;
                        continue;
                    }
                    None => StorageError::transient(format!("{what}: GCS did not finish the upload")),
                    Some(next) if next > from => {
                        from = next;
                        continue;
                    }
                    Some(_) => StorageError::transient(format!("{what}: GCS made no progress")),
                },
                Err(e) => e,
            },
            Err(e) => e,
        };
        if !failure.is_transient() {
            return Err(failure);
        }
        // Resume: wait, ask the session where it stands, resend from there.
        loop {
            failures += 1;
            let Some(wait) = resume.delay_after(failures, &failure) else { return Err(failure) };
            tokio::time::sleep(wait).await;
            tracing::debug!(start, failures, "gcs: resuming an interrupted upload chunk");
            match query_status(client, session, &total_text, &what).await {
                Ok(SessionState::Done(resource)) => return finished(client, resource, total, &what).await,
                Ok(SessionState::Persisted(n)) => match progress(n, start, end, &what)? {
                    None if total.is_none() => return Ok(None),
                    None => {
                        from = end;
                        break;
                    }
                    Some(next) => {
                        from = next;
                        break;
                    }
                },
                Err(e) if e.is_transient() => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Where to go on after the session reports `persisted` bytes: `None` when
/// this chunk is complete, `Some(offset)` to send from `offset`.
fn progress(persisted: u64, start: u64, end: u64, what: &str) -> Result<Option<u64>> {
    if persisted < start {
        return Err(StorageError::integrity(format!(
            "{what}: GCS has only {persisted} bytes, less than it had confirmed ({start})"
        )));
    }
    Ok(if persisted >= end { None } else { Some(persisted) })
}

/// A session reported the upload finished: fine only for the final chunk.
async fn finished(
    client: &GcsClient,
    resource: ObjectResource,
    total: Option<u64>,
    what: &str,
) -> Result<Option<Written>> {
    match total {
        Some(sent) => Ok(Some(Written { resource, sent })),
        None => {
            // The server finalised before it had every byte (fake-gcs-server
            // does this on a status query): never keep a truncated object.
            remove_generation(client, &resource.name, resource.generation.as_deref()).await;
            Err(StorageError::integrity(format!(
                "{what}: GCS finished the upload early at {} bytes; the object was removed",
                resource.size
            )))
        }
    }
}

async fn query_status(client: &GcsClient, session: &Url, total_text: &str, what: &str) -> Result<SessionState> {
    let request = client
        .http
        .put(session.clone())
        .timeout(client.settings.request_timeout)
        .header(CONTENT_RANGE, format!("bytes */{total_text}"))
        .header(CONTENT_LENGTH, 0)
        .body(Bytes::new());
    let response = client.send_raw(request, what).await?;
    interpret(response, what).await
}

async fn interpret(response: reqwest::Response, what: &str) -> Result<SessionState> {
    match response.status() {
        StatusCode::OK | StatusCode::CREATED => {
            Ok(SessionState::Done(csal_http::read_json::<ObjectResource>(response, what).await?))
        }
        StatusCode::PERMANENT_REDIRECT => {
            // "Range: bytes=0-N" = N+1 bytes persisted; no header = none.
            let persisted = response
                .headers()
                .get(RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|r| r.trim().strip_prefix("bytes=0-"))
                .and_then(|n| n.trim().parse::<u64>().ok())
                .map_or(0, |last| last + 1);
            Ok(SessionState::Persisted(persisted))
        }
        StatusCode::NOT_FOUND | StatusCode::GONE => Err(StorageError::transient(format!(
            "{what}: the upload session expired or was cancelled; the write must start again"
        ))),
        _ => Err(error::from_response(response, what).await),
    }
}

/// Cancel a session so nothing of it is ever finalised (best effort).
async fn cancel_session(client: &GcsClient, session: &Url) {
    let request = client.http.delete(session.clone()).timeout(client.settings.request_timeout);
    if let Err(e) = client.send_raw(request, "cancel upload").await {
        tracing::debug!(error = %e, "gcs: cancelling an upload session failed (it expires by itself)");
    }
}

/// Delete one generation of an object we just created (best effort).
async fn remove_generation(client: &GcsClient, name: &str, generation: Option<&str>) {
    let Ok(mut url) = client.object_url(name) else { return };
    if let Some(g) = generation {
        url.query_pairs_mut().append_pair("ifGenerationMatch", g);
    }
    let request = client.http.delete(url);
    if let Err(e) = client.send(request, "remove a bad upload").await {
        tracing::warn!(object = name, error = %e, "gcs: could not remove an upload that failed verification");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_follows_the_session() {
        assert_eq!(progress(100, 0, 100, "w").unwrap(), None);
        assert_eq!(progress(40, 0, 100, "w").unwrap(), Some(40));
        assert_eq!(progress(0, 0, 100, "w").unwrap(), Some(0));
        assert_eq!(progress(10, 50, 100, "w").unwrap_err().kind(), csal_core::ErrorKind::Integrity);
    }
}
