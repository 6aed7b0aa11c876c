//! Uploads: a plain streaming PUT for objects up to one segment, a Static
//! Large Object above that.
//!
//! A body of known size streams straight into one PUT (or into SLO
//! segments). A body of unknown size is cut into segment-sized parts
//! (`ByteStream::into_parts`): if the first part is short the object is
//! small and goes in one PUT, otherwise every part becomes a segment in the
//! segment container and a manifest (`?multipart-manifest=put`) ties them
//! together. Memory: one segment. Every PUT of the visible object carries
//! `If-None-Match: *`; a failed or dropped upload deletes its segments.
//! Requests whose body is in memory (segments, the manifest, a one-shot
//! body's single PUT) are sent again in place; a PUT of the visible object
//! whose answer was lost is looked for before it is sent again or failed
//! (`RetryPolicy::resend_write`), so it is never stored twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use csal_core::{ByteStream, Result, RetryPolicy, StorageError, WriteMeta, WriteReceipt, object_id_from_hint};
use futures::StreamExt;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use crate::client::SwiftClient;
use crate::error::status_error;

/// Deletes uploaded segments unless disarmed (failed or dropped uploads).
struct SegmentCleanup {
    client: Arc<SwiftClient>,
    segments: Vec<String>,
    armed: bool,
}

impl Drop for SegmentCleanup {
    fn drop(&mut self) {
        if !self.armed || self.segments.is_empty() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let client = self.client.clone();
        let segments = std::mem::take(&mut self.segments);
        handle.spawn(async move {
            if let Err(e) = delete_segments(&client, &segments).await {
                tracing::warn!(target: "csal_swift", error = %e, "could not delete a segment of a failed upload");
            }
        });
    }
}

/// Delete segments from the segment container (a missing one is gone
/// already); every one is tried, the first failure is returned.
pub(crate) async fn delete_segments(client: &SwiftClient, segments: &[String]) -> Result<()> {
    let container = &client.settings.segment_container;
    let mut first_failure = None;
    for seg in segments {
        let what = format!("DELETE segment {seg}");
        let result = client
            .send(&what, |s| client.http.request(Method::DELETE, SwiftClient::object_url(s, container, seg)))
            .await
            .and_then(|resp| match resp.status().as_u16() {
                200..=299 | 404 => Ok(()),
                _ => Err(status_error(resp.status(), resp.headers(), &what)),
            });
        if let Err(e) = result {
            first_failure.get_or_insert(e);
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// `X-Object-Meta-*` headers and the content type of a write.
pub(crate) fn object_headers(meta: &WriteMeta) -> Result<Vec<(HeaderName, HeaderValue)>> {
    let mut out = Vec::new();
    let ct = meta.content_type.as_deref().unwrap_or("application/octet-stream");
    let ct =
        HeaderValue::from_str(ct).map_err(|_| StorageError::invalid_input("content type is not a valid header"))?;
    out.push((CONTENT_TYPE, ct));
    for (k, v) in &meta.metadata {
        let name = HeaderName::from_bytes(format!("x-object-meta-{k}").as_bytes())
            .map_err(|_| StorageError::invalid_input(format!("metadata key {k:?} is not a valid header name")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| StorageError::invalid_input(format!("metadata value of {k:?} is not a valid header value")))?;
        out.push((name, value));
    }
    Ok(out)
}

pub(crate) async fn write(client: &Arc<SwiftClient>, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
    client.ensure_containers().await?;
    let id = object_id_from_hint(&meta.key_hint);
    let headers = object_headers(&meta)?;
    let segment = client.settings.segment_size;
    let replayable = body.is_replayable();
    match body.size() {
        // Streamed: sent once (the retry layer replays a replayable body).
        Some(size) if size <= segment as u64 => put_whole(client, &id, body, size, 1, &headers).await,
        Some(_) => slo(client, &id, Box::pin(body.into_parts(segment)), &headers).await,
        None => {
            let mut parts = Box::pin(body.into_parts(segment));
            let first = parts.next().await.transpose()?.unwrap_or_default();
            if first.len() < segment {
                // The body ended within the first segment: one PUT from memory.
                let len = first.len() as u64;
                let attempts =
                    RetryPolicy::single_request_attempts(replayable, RetryPolicy::in_place_default().max_attempts);
                return put_whole(client, &id, ByteStream::from_bytes(first), len, attempts, &headers).await;
            }
            let all = futures::stream::iter([Ok(first)]).chain(parts);
            slo(client, &id, Box::pin(all), &headers).await
        }
    }
}

/// Server-side copy of an object up to one segment: a `PUT` of the new
/// object with `X-Copy-From` (the write's content type and metadata,
/// `X-Fresh-Metadata` so the source's do not merge in). No `If-None-Match`:
/// Swift's copy middleware applies it to the source (answering 304); the
/// new id is fresh (a ULID), so nothing can be there to replace.
/// A larger source is a Static Large Object, whose server-side copy would
/// concatenate it into one object beyond Swift's size limit: it is streamed
/// through CSAL into a new SLO instead (`None`: the caller streams).
pub(crate) async fn copy(client: &Arc<SwiftClient>, object_id: &str, meta: &WriteMeta) -> Result<Option<WriteReceipt>> {
    let source = crate::read::stat(client, object_id).await?;
    if source.size > client.settings.segment_size as u64 {
        return Ok(None);
    }
    let id = object_id_from_hint(&meta.key_hint);
    let headers = object_headers(meta)?;
    let what = format!("copy {object_id} to {id}");
    let container = &client.settings.container;
    let from = format!("/{}", SwiftClient::object_url_path(container, object_id));
    let resp = client
        .send(&what, |s| {
            let mut req = client
                .http
                .request(Method::PUT, SwiftClient::object_url(s, container, &id))
                .header("X-Copy-From", &from)
                .header("X-Fresh-Metadata", "true")
                .header(CONTENT_LENGTH, 0);
            for (k, v) in &headers {
                req = req.header(k, v);
            }
            req
        })
        .await?;
    if !resp.status().is_success() {
        return Err(status_error(resp.status(), resp.headers(), &what));
    }
    Ok(Some(receipt(&id, source.size, resp.headers())))
}

/// The receipt of an object this write stored, from its answer or a look.
fn receipt(id: &str, size: u64, headers: &HeaderMap) -> WriteReceipt {
    let etag = headers.get("etag").and_then(|v| v.to_str().ok()).map(|s| s.trim_matches('"').to_owned());
    WriteReceipt { object_id: id.to_owned(), size, checksum: None, etag, instance: None }
}

/// The object an earlier attempt of this write stored (its answer was
/// lost, or a resend was refused because it exists), if it has our size.
/// The id is fresh (a new ULID), so only this write can have put it there.
async fn stored_earlier(client: &SwiftClient, id: &str, size: u64) -> Result<Option<WriteReceipt>> {
    let meta = crate::read::stat(client, id).await?;
    Ok((meta.size == size).then(|| WriteReceipt {
        object_id: id.to_owned(),
        size,
        checksum: None,
        etag: meta.etag,
        instance: None,
    }))
}

/// The whole object in one PUT (`If-None-Match: *`), up to `attempts`
/// times (more than one only for a body that can be cloned, i.e. in
/// memory). After a lost answer the object is looked for
/// (`RetryPolicy::resend_write`), so a PUT that landed is neither failed nor,
/// through the retry layer's retry under a new id, stored twice.
async fn put_whole(
    client: &SwiftClient,
    id: &str,
    body: ByteStream,
    size: u64,
    attempts: u32,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<WriteReceipt> {
    let what = format!("PUT {id}");
    let mut body = Some(body);
    let send = |_| {
        let next = body.as_ref().filter(|_| attempts > 1).and_then(ByteStream::try_clone).or_else(|| body.take());
        put_once(client, id, next, size, headers, &what)
    };
    RetryPolicy::in_place(attempts).resend_write(&what, || stored_earlier(client, id, size), send).await
}

/// One streaming PUT of the whole object.
async fn put_once(
    client: &SwiftClient,
    id: &str,
    body: Option<ByteStream>,
    size: u64,
    headers: &[(HeaderName, HeaderValue)],
    what: &str,
) -> Result<WriteReceipt> {
    let Some(body) = body else {
        return Err(StorageError::transient(format!("{what}: the body was sent already and cannot be replayed")));
    };
    let session = client.auth.session().await?;
    let counter = Arc::new(AtomicU64::new(0));
    let failure: Arc<std::sync::Mutex<Option<StorageError>>> = Arc::default();
    let (c, f) = (counter.clone(), failure.clone());
    let stream = body.map(move |item| match item {
        Ok(chunk) => {
            c.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok::<Bytes, std::io::Error>(chunk)
        }
        Err(e) => {
            let mut slot = f.lock().expect("lock");
            if slot.is_none() {
                *slot = Some(StorageError::new(e.kind(), format!("the body to upload failed: {}", e.message())));
            }
            Err(std::io::Error::other("request body failed"))
        }
    });
    let mut req = client
        .http
        .request(Method::PUT, SwiftClient::object_url(&session, &client.settings.container, id))
        .header("If-None-Match", "*")
        .header(CONTENT_LENGTH, size);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = req.body(reqwest::Body::wrap_stream(stream));
    let result = client.send_once(&session, what, req).await;
    if let Some(e) = failure.lock().expect("lock").take() {
        return Err(e);
    }
    let resp = result?;
    if !resp.status().is_success() {
        return Err(status_error(resp.status(), resp.headers(), what));
    }
    Ok(receipt(id, counter.load(Ordering::Relaxed), resp.headers()))
}

type Parts<'a> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<Bytes>> + Send + 'a>>;

/// A Static Large Object: segments, then the manifest. On failure the
/// segments are deleted before the error returns (and, if the future is
/// dropped midway, by a background task).
async fn slo(
    client: &Arc<SwiftClient>,
    id: &str,
    parts: Parts<'_>,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<WriteReceipt> {
    let mut cleanup = SegmentCleanup { client: client.clone(), segments: Vec::new(), armed: true };
    let result = slo_inner(client, id, parts, headers, &mut cleanup).await;
    if result.is_err() {
        cleanup.armed = false;
        if let Err(e) = delete_segments(client, &std::mem::take(&mut cleanup.segments)).await {
            tracing::warn!(target: "csal_swift", error = %e, "could not delete a segment of a failed upload");
        }
    }
    result
}

async fn slo_inner(
    client: &Arc<SwiftClient>,
    id: &str,
    mut parts: Parts<'_>,
    headers: &[(HeaderName, HeaderValue)],
    cleanup: &mut SegmentCleanup,
) -> Result<WriteReceipt> {
    let seg_container = client.settings.segment_container.clone();
    let upload = ulid::Ulid::new().to_string();
    let mut manifest = Vec::new();
    let mut total = 0u64;
    let mut n = 0u32;
    while let Some(part) = parts.next().await {
        let part = part?;
        n += 1;
        if n > 1000 {
            return Err(StorageError::invalid_input(format!(
                "{id}: more than 1000 segments (Swift's default manifest limit); raise segment_size_mb"
            )));
        }
        // `stale.rs` reads these names back: OBJECT-ID/UPLOAD/NUMBER.
        let name = format!("{id}/{upload}/{n:08}");
        let what = format!("PUT segment {n} of {id}");
        let len = part.len();
        cleanup.segments.push(name.clone());
        // A segment is in memory and its name ours alone: sent again in place.
        let put_segment = |_| async {
            let resp = client
                .send(&what, |s| {
                    client
                        .http
                        .request(Method::PUT, SwiftClient::object_url(s, &seg_container, &name))
                        .header(CONTENT_LENGTH, len)
                        .body(part.clone())
                })
                .await?;
            match resp.status().is_success() {
                true => Ok(receipt(&name, len as u64, resp.headers())),
                false => Err(status_error(resp.status(), resp.headers(), &what)),
            }
        };
        let etag = RetryPolicy::in_place_default().resend(&what, put_segment).await?.etag.unwrap_or_default();
        manifest.push(json!({ "path": format!("/{seg_container}/{name}"), "etag": etag, "size_bytes": len }));
        total += len as u64;
    }
    let body = Bytes::from(serde_json::to_vec(&manifest).expect("json"));
    let what = format!("PUT manifest of {id}");
    // The segments are stored, so a failed manifest is sent again (always:
    // a replayable body would otherwise go up again as a whole).
    let put_manifest = |_| async {
        let resp = client
            .send(&what, |s| {
                let mut req = client
                    .http
                    .request(Method::PUT, SwiftClient::object_url(s, &client.settings.container, id))
                    .query(&[("multipart-manifest", "put")])
                    .header("If-None-Match", "*")
                    .body(body.clone());
                for (k, v) in headers {
                    req = req.header(k, v);
                }
                req
            })
            .await?;
        match resp.status().is_success() {
            // The manifest's ETag is of the segment list, not the content.
            true => Ok(WriteReceipt { etag: None, ..receipt(id, total, resp.headers()) }),
            false => Err(status_error(resp.status(), resp.headers(), &what)),
        }
    };
    let written =
        RetryPolicy::in_place_default().resend_write(&what, || stored_earlier(client, id, total), put_manifest).await?;
    cleanup.armed = false;
    Ok(written)
}
