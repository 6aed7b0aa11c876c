//! Uploads.
//!
//! Plain WebDAV: the body streams (`reqwest::Body::wrap_stream`, memory
//! bounded by reqwest's buffers) to a hidden temporary name in the target
//! folder with `If-None-Match: *`, then `MOVE` with `Overwrite: F` gives it
//! its final name. A broken or dropped upload therefore never leaves a
//! visible object (its temporary file is deleted), and an existing object is
//! never replaced: the server answers 412 instead.
//!
//! Nextcloud: objects larger than one chunk use chunked upload v2
//! (`MKCOL uploads/<user>/<transfer>` with `Destination`, `PUT` chunks
//! `1..N`, `MOVE .file` to the destination); memory is one chunk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use csal_core::{
    ByteStream, ErrorKind, Result, RetryPolicy, StorageError, WriteMeta, WriteReceipt, object_id_from_hint,
};
use futures::StreamExt;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName};

use crate::client::DavClient;
use crate::error::status_error;
use crate::list::PARTIAL_PREFIX;

/// Where Nextcloud's chunked uploads go.
pub(crate) struct ChunkedUploads {
    /// `.../remote.php/dav/uploads/<user>/`
    pub client: DavClient,
    pub chunk_size: usize,
}

/// Deletes a temporary upload when dropped before `disarm` (failed or
/// abandoned uploads leave nothing behind).
struct Cleanup {
    client: Arc<DavClient>,
    rel: Option<String>,
    uploads: bool,
    chunked: Option<Arc<ChunkedUploads>>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.rel = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Some(rel) = self.rel.take() else { return };
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        let client = self.client.clone();
        let chunked = self.chunked.clone();
        let uploads = self.uploads;
        handle.spawn(async move {
            let result = match (uploads, chunked) {
                (true, Some(c)) => c.client.simple(Method::DELETE, &rel, &[]).await,
                _ => client.simple(Method::DELETE, &rel, &[]).await,
            };
            if let Err(e) = result {
                tracing::warn!(target: "csal_webdav", error = %e, "could not delete an abandoned upload");
            }
        });
    }
}

fn method(name: &[u8]) -> Method {
    Method::from_bytes(name).expect("method")
}

/// A record of the first error the body stream produced, to report it
/// instead of reqwest's generic "body error".
type BodyFailure = Arc<Mutex<Option<(ErrorKind, String)>>>;

fn streaming_body(body: ByteStream, counter: Arc<AtomicU64>, failure: BodyFailure) -> reqwest::Body {
    let stream = body.map(move |item| match item {
        Ok(chunk) => {
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok::<Bytes, std::io::Error>(chunk)
        }
        Err(e) => {
            let mut slot = failure.lock().expect("lock");
            if slot.is_none() {
                *slot = Some((e.kind(), e.message().to_owned()));
            }
            Err(std::io::Error::other("request body failed"))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

fn body_failed(failure: &BodyFailure) -> Option<StorageError> {
    failure
        .lock()
        .expect("lock")
        .take()
        .map(|(kind, msg)| StorageError::new(kind, format!("the body to upload failed: {msg}")))
}

pub(crate) async fn write(
    client: &Arc<DavClient>,
    chunked: Option<&Arc<ChunkedUploads>>,
    body: ByteStream,
    meta: WriteMeta,
) -> Result<WriteReceipt> {
    let id = object_id_from_hint(&meta.key_hint);
    let dir = id.rsplit_once('/').map(|(d, _)| d.to_owned()).unwrap_or_default();
    client.ensure_dirs(&dir).await?;
    if let Some(chunked) = chunked {
        // Look at the first chunk: a body that ends within it goes the plain way.
        let mut parts = Box::pin(body.into_parts(chunked.chunk_size));
        let first = parts.next().await.transpose()?;
        let second = match first {
            Some(_) => parts.next().await.transpose()?,
            None => None,
        };
        return match second {
            None => {
                let data = first.unwrap_or_default();
                put_via_temp(client, &id, &dir, ByteStream::from_bytes(data), &meta).await
            }
            Some(second) => {
                let rest = futures::stream::iter([Ok(first.expect("first")), Ok(second)]).chain(parts);
                chunked_upload(client, chunked, &id, rest, &meta).await
            }
        };
    }
    put_via_temp(client, &id, &dir, body, &meta).await
}

async fn put_via_temp(
    client: &Arc<DavClient>,
    id: &str,
    dir: &str,
    body: ByteStream,
    meta: &WriteMeta,
) -> Result<WriteReceipt> {
    let temp_name = format!("{PARTIAL_PREFIX}{}", ulid::Ulid::new());
    let temp = if dir.is_empty() { temp_name } else { format!("{dir}/{temp_name}") };
    let what = format!("PUT {id}");
    let size_hint = body.size();
    let counter = Arc::new(AtomicU64::new(0));
    let failure: BodyFailure = Arc::default();
    let mut cleanup = Cleanup { client: client.clone(), rel: Some(temp.clone()), uploads: false, chunked: None };
    let mut req = client
        .request(Method::PUT, &temp)
        .await?
        .header("If-None-Match", "*")
        .header(CONTENT_TYPE, meta.content_type.as_deref().unwrap_or("application/octet-stream"));
    if let Some(len) = size_hint {
        req = req.header(CONTENT_LENGTH, len);
    }
    let req = req.body(streaming_body(body, counter.clone(), failure.clone()));
    let resp = match client.send(req, &what).await {
        Ok(r) => r,
        Err(e) => return Err(body_failed(&failure).unwrap_or(e)),
    };
    if let Some(e) = body_failed(&failure) {
        return Err(e);
    }
    if !resp.status().is_success() {
        if resp.status().as_u16() == 409 {
            client.forget_dirs();
        }
        return Err(status_error(resp.status(), resp.headers(), &what));
    }
    let etag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).map(|s| s.trim_matches('"').to_owned());
    drop(resp);
    let size = counter.load(Ordering::Relaxed);
    publish(client, &temp, id, Some(size)).await?;
    cleanup.disarm();
    Ok(WriteReceipt { object_id: id.to_owned(), size, checksum: None, etag, instance: None })
}

/// Give a finished temporary file its final name (see [`move_into_place`]).
async fn publish(client: &DavClient, temp: &str, id: &str, size: Option<u64>) -> Result<()> {
    move_into_place(client, temp, &[], client, id, size).await
}

/// `MOVE` `from` (on `via`: the files, or Nextcloud's uploads) to the new
/// object `id` with `Overwrite: F`, so an existing object is never replaced
/// (412). The `MOVE` is sent again after a transient failure; after a lost
/// answer (or a resend refused because `from` is gone or the name taken)
/// the object is looked for (`RetryPolicy::resend_write`): a `MOVE` that
/// landed must neither fail the write nor, through the retry layer's retry
/// under a new id, leave the object stored twice. `size`: what the object
/// must have (unknown for a server-side copy; the id is fresh, so what is
/// there is this write's).
async fn move_into_place(
    via: &DavClient,
    from: &str,
    extra: &[(HeaderName, String)],
    client: &DavClient,
    id: &str,
    size: Option<u64>,
) -> Result<()> {
    let what = format!("MOVE to {id}");
    let mut headers = vec![
        (HeaderName::from_static("destination"), client.url_of(id)),
        (HeaderName::from_static("overwrite"), "F".into()),
    ];
    headers.extend_from_slice(extra);
    let (what, headers) = (&what, &headers);
    let send = |attempt| async move {
        let resp = via.simple(method(b"MOVE"), from, headers).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        let e = status_error(resp.status(), resp.headers(), what);
        Err(if e.kind() == ErrorKind::AlreadyExists && attempt == 1 {
            StorageError::already_exists(format!("'{id}' already exists; not overwritten"))
        } else {
            e
        })
    };
    let look = || async {
        let meta = crate::list::stat(client, id).await?;
        Ok(size.is_none_or(|size| size == meta.size).then_some(()))
    };
    RetryPolicy::in_place_default().resend_write(what, look, send).await
}

/// Server-side copy: `COPY` to a hidden temporary name beside the new
/// object (`Overwrite: F`), then the same no-clobber `MOVE` as a write, so a
/// copy the server did not finish is never visible. Returns the new id.
pub(crate) async fn copy(client: &Arc<DavClient>, object_id: &str, meta: &WriteMeta) -> Result<String> {
    let id = object_id_from_hint(&meta.key_hint);
    let dir = id.rsplit_once('/').map(|(d, _)| d.to_owned()).unwrap_or_default();
    client.ensure_dirs(&dir).await?;
    let temp_name = format!("{PARTIAL_PREFIX}{}", ulid::Ulid::new());
    let temp = if dir.is_empty() { temp_name } else { format!("{dir}/{temp_name}") };
    let mut cleanup = Cleanup { client: client.clone(), rel: Some(temp.clone()), uploads: false, chunked: None };
    let headers = [
        (HeaderName::from_static("destination"), client.url_of(&temp)),
        (HeaderName::from_static("overwrite"), "F".into()),
        (HeaderName::from_static("depth"), "0".into()),
    ];
    let resp = client.simple(method(b"COPY"), object_id, &headers).await?;
    if !resp.status().is_success() {
        return Err(status_error(resp.status(), resp.headers(), &format!("COPY {object_id}")));
    }
    drop(resp);
    publish(client, &temp, &id, None).await?;
    cleanup.disarm();
    Ok(id)
}

async fn chunked_upload(
    client: &Arc<DavClient>,
    chunked: &Arc<ChunkedUploads>,
    id: &str,
    mut parts: impl futures::Stream<Item = Result<Bytes>> + Unpin,
    _meta: &WriteMeta,
) -> Result<WriteReceipt> {
    let up = &chunked.client;
    let transfer = format!("csal-{}", ulid::Ulid::new());
    let destination = client.url_of(id);
    let dest_header = (HeaderName::from_static("destination"), destination.clone());
    let resp = up.simple(method(b"MKCOL"), &format!("{transfer}/"), &[dest_header]).await?;
    if !resp.status().is_success() {
        return Err(status_error(resp.status(), resp.headers(), &format!("MKCOL upload folder for {id}")));
    }
    let mut cleanup = Cleanup {
        client: client.clone(),
        rel: Some(format!("{transfer}/")),
        uploads: true,
        chunked: Some(chunked.clone()),
    };
    let mut total = 0u64;
    let mut number = 0u32;
    while let Some(part) = parts.next().await {
        let part = part?;
        number += 1;
        if number > 10_000 {
            return Err(StorageError::invalid_input(format!("{id}: more than 10000 chunks; raise chunk_size_mb")));
        }
        total += part.len() as u64;
        let what = format!("PUT chunk {number} of {id}");
        let req = up
            .request(Method::PUT, &format!("{transfer}/{number}"))
            .await?
            .header("destination", destination.clone())
            .header(CONTENT_LENGTH, part.len())
            .body(part);
        let resp = up.send(req, &what).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp.status(), resp.headers(), &what));
        }
    }
    let total_length = [(HeaderName::from_static("oc-total-length"), total.to_string())];
    move_into_place(up, &format!("{transfer}/.file"), &total_length, client, id, Some(total)).await?;
    // Nextcloud removes the upload folder itself after assembling.
    cleanup.disarm();
    Ok(WriteReceipt { object_id: id.to_owned(), size: total, checksum: None, etag: None, instance: None })
}
