//! Streaming upload with bounded memory.
//!
//! The body is cut into parts of `part_size` bytes (`ByteStream::into_parts`).
//! A body that ends within the first part is one `PutObject`; anything
//! longer is a multipart upload with at most `upload_concurrency` parts in
//! flight, so memory is about `part_size × (upload_concurrency + 1)`
//! whatever the object size. All parts but the last have the same size
//! (R2 and some others require it).
//!
//! Integrity: every PUT and part carries a checksum of its bytes
//! (`x-amz-checksum-crc32c` or `Content-MD5`) that the server verifies.
//!
//! No data loss: ids are fresh per write (`object_id_from_hint`), and
//! `If-None-Match: *` makes the server refuse to replace an existing key.
//! A failed upload aborts its multipart upload; a dropped one (cancelled
//! future) aborts it from a spawned task, so no part and no object is left.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream as SdkBody;
use aws_sdk_s3::types::{
    ChecksumAlgorithm as SdkChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
    StorageClass,
};
use base64::Engine;
use csal_core::{
    BodyPart, ByteStream, Checksum, ErrorKind, Result, RetryPolicy, StorageError, WriteMeta, WriteReceipt,
    object_id_from_hint, send_parts,
};
use futures::StreamExt;

use crate::client::S3Client;
use crate::config::{ChecksumAlgorithm, ConditionalCreate, MAX_PARTS, S3Config};
use crate::error::map_sdk_error;

/// User metadata key under which a single-PUT object keeps its CRC32C (hex),
/// so a full read can be verified on any S3-compatible server (not all keep
/// `x-amz-checksum-*`, and none lets us set metadata after a multipart
/// upload: those objects are verified only against a caller's checksum).
pub(crate) const CRC32C_METADATA: &str = "csal-crc32c";

/// Upload settings taken from the config once.
pub(crate) struct Uploader {
    pub(crate) part_size: usize,
    pub(crate) concurrency: usize,
    checksum: ChecksumAlgorithm,
    conditional: ConditionalCreate,
    /// Cleared (mode `auto`) once the server said it does not implement If-None-Match.
    send_if_none_match: AtomicBool,
    pub(crate) storage_class: Option<StorageClass>,
    pub(crate) sse: Option<ServerSideEncryption>,
    pub(crate) sse_kms_key_id: Option<String>,
    /// Hash bodies into the signature (else `UNSIGNED-PAYLOAD`; see `S3Config::signs_payload`).
    sign_payload: bool,
    pub(crate) lock: crate::lock::WriteLock,
}

/// What every new object gets, whichever request makes it (PutObject,
/// CreateMultipartUpload, CopyObject: different SDK builders with the same
/// setters): the caller's content type and metadata, the instance's storage
/// class, encryption and Object Lock.
macro_rules! new_object_settings {
    ($req:expr, $uploader:expr, $meta:expr) => {{
        let mut req = $req
            .set_content_type($meta.content_type.clone())
            .set_storage_class($uploader.storage_class.clone())
            .set_server_side_encryption($uploader.sse.clone())
            .set_ssekms_key_id($uploader.sse_kms_key_id.clone())
            .set_object_lock_legal_hold_status($uploader.lock.legal_hold())
            .set_object_lock_mode($uploader.lock.mode())
            .set_object_lock_retain_until_date($uploader.lock.retain_until());
        for (k, v) in &$meta.metadata {
            req = req.metadata(k, v);
        }
        req
    }};
}
pub(crate) use new_object_settings;

/// A single PUT's or a part's checksum header and payload signing, the same
/// on the SDK's two request builders (they share no trait). `$locked`: S3
/// refuses a locked upload without Content-MD5 or the algorithm header; the
/// value is ours, the SDK adds nothing.
macro_rules! checksummed {
    ($req:expr, $sum:expr, $uploader:expr, $locked:expr) => {{
        let req = match $sum {
            PartChecksum::Crc32c(v) if $locked => {
                $req.checksum_crc32_c(v).checksum_algorithm(SdkChecksumAlgorithm::Crc32C)
            }
            PartChecksum::Crc32c(v) => $req.checksum_crc32_c(v),
            PartChecksum::Md5(v) => $req.content_md5(v),
            PartChecksum::None => $req,
        };
        let mut req = req.customize();
        if !$uploader.sign_payload {
            req = req.disable_payload_signing();
        }
        req
    }};
}

impl Uploader {
    pub(crate) fn new(config: &S3Config) -> Self {
        Uploader {
            part_size: config.part_size(),
            concurrency: config.upload_concurrency,
            checksum: config.checksum_algorithm,
            conditional: config.conditional_create,
            send_if_none_match: AtomicBool::new(config.conditional_create != ConditionalCreate::Never),
            storage_class: config.storage_class.as_deref().map(StorageClass::from),
            sse: config.server_side_encryption.as_deref().map(ServerSideEncryption::from),
            sse_kms_key_id: config.sse_kms_key_id.clone(),
            sign_payload: config.signs_payload(),
            lock: crate::lock::WriteLock::new(config),
        }
    }

    /// Whether writes currently refuse to overwrite at the server.
    pub(crate) fn conditional_create(&self) -> bool {
        self.send_if_none_match.load(Ordering::Relaxed)
    }

    fn if_none_match(&self) -> Option<String> {
        self.conditional_create().then(|| "*".to_owned())
    }

    /// In `auto` mode, a NotImplemented answer to a request that carried
    /// If-None-Match turns it off for this instance; returns whether to retry.
    fn fallback_on(&self, err: &StorageError, sent: bool) -> bool {
        let rejected = sent && matches!(err.kind(), ErrorKind::Unsupported);
        if rejected && self.conditional == ConditionalCreate::Auto {
            tracing::warn!("server does not implement If-None-Match on PUT; relying on unique object ids only");
            self.send_if_none_match.store(false, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// The SDK body of a part held in memory: its chunks as they are (no
    /// copy into one buffer) when the payload goes unsigned; one buffer when
    /// SigV4 must hash it (the signer hashes only an in-memory body).
    fn sdk_body(&self, part: &BodyPart) -> SdkBody {
        if self.sign_payload || part.chunks().len() <= 1 {
            return SdkBody::from(part.clone().into_bytes());
        }
        let frames =
            part.chunks().to_vec().into_iter().map(|c| Ok::<_, std::convert::Infallible>(http_body::Frame::data(c)));
        SdkBody::from_body_1_x(http_body_util::StreamBody::new(futures::stream::iter(frames)))
    }

    pub(crate) async fn upload(&self, client: &S3Client, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        let object_id = object_id_from_hint(&meta.key_hint);
        let key = client.key(&object_id);
        let single_attempts =
            RetryPolicy::single_request_attempts(body.is_replayable(), RetryPolicy::in_place_default().max_attempts);
        let tally = body.crc32c_tally().cloned();
        let multipart_for_sure = body.size().is_some_and(|size| size > self.part_size as u64);
        if multipart_for_sure {
            // Start the upload now rather than after gathering the first part.
            let parts = body.into_chunked_parts(self.part_size);
            let (size, etag) = self.put_multipart(client, &key, &object_id, parts, &meta).await?;
            return Ok(WriteReceipt { object_id, size, checksum: None, etag, instance: None });
        }
        let mut parts = Box::pin(body.into_chunked_parts_marking_if_single(self.part_size));
        let (first, is_last) = match parts.next().await {
            None => (BodyPart::default(), true),
            Some(first) => first?,
        };
        let (size, etag) = if is_last {
            let size = first.len() as u64;
            // The whole body has passed the core's tally: its CRC32C is this part's.
            let crc = tally.filter(|t| t.bytes() == size).map_or_else(|| first.crc32c(), |t| t.crc32c());
            (size, self.put_single(client, &object_id, first, crc, &meta, single_attempts).await?)
        } else {
            let rest = futures::stream::iter([Ok(first)]).chain(parts.map(|part| part.map(|(part, _)| part)));
            self.put_multipart(client, &key, &object_id, rest, &meta).await?
        };
        Ok(WriteReceipt { object_id, size, checksum: None, etag, instance: None })
    }

    /// One PutObject of `data`, whose CRC32C (`crc`) the caller has.
    async fn put_single(
        &self,
        client: &S3Client,
        object_id: &str,
        data: BodyPart,
        crc: u32,
        meta: &WriteMeta,
        attempts: u32,
    ) -> Result<Option<String>> {
        let key = client.key(object_id);
        let key = key.as_str();
        let what = format!("write '{object_id}'");
        let sum = PartChecksum::with_crc32c(self.checksum, &data, crc);
        let full_crc = Checksum::crc32c(crc).value;
        let size = data.len() as u64;
        let (data, sum, what, full_crc) = (&data, &sum, what.as_str(), &full_crc);
        let stored = || self.stored_earlier(client, object_id, size, Some(crc));
        RetryPolicy::in_place(attempts)
            .resend_write(what, stored, move |_| async move {
                loop {
                    let if_none_match = self.if_none_match();
                    let sent = if_none_match.is_some();
                    let mut req = client
                        .sdk
                        .put_object()
                        .bucket(&client.bucket)
                        .key(key)
                        .content_length(data.len() as i64)
                        .body(self.sdk_body(data))
                        .set_if_none_match(if_none_match);
                    req = new_object_settings!(req, self, meta);
                    req = req.metadata(CRC32C_METADATA, full_crc.as_str());
                    match checksummed!(req, sum, self, self.lock.locks_writes()).send().await {
                        Ok(out) => return Ok(out.e_tag().map(|e| e.trim_matches('"').to_owned())),
                        Err(e) => {
                            let err = map_sdk_error(e, what);
                            if self.fallback_on(&err, sent) {
                                continue;
                            }
                            return Err(err);
                        }
                    }
                }
            })
            .await
    }

    /// The object an earlier attempt of this write stored (its answer was
    /// lost, or a resend was refused because the key exists), if it has our
    /// size and, where known, our CRC32C: `Some(etag)`. The key is fresh (a
    /// new ULID), so only this write's attempts can have put anything there.
    async fn stored_earlier(
        &self,
        client: &S3Client,
        object_id: &str,
        size: u64,
        crc: Option<u32>,
    ) -> Result<Option<Option<String>>> {
        let meta = client.head(object_id).await?;
        let same_crc = match (crc, &meta.checksum) {
            (Some(crc), Some(kept)) => *kept == Checksum::crc32c(crc),
            _ => true,
        };
        Ok((meta.size == size && same_crc).then_some(meta.etag))
    }

    async fn put_multipart(
        &self,
        client: &S3Client,
        key: &str,
        object_id: &str,
        parts: impl futures::Stream<Item = Result<BodyPart>> + Send,
        meta: &WriteMeta,
    ) -> Result<(u64, Option<String>)> {
        let what = format!("write '{object_id}'");
        let crc32c_parts = self.checksum == ChecksumAlgorithm::Crc32c;
        let what = what.as_str();
        self.multipart(client, key, what, meta, crc32c_parts, |upload_id| async move {
            self.upload_parts(client, key, &upload_id, what, parts).await
        })
        .await
    }

    /// A multipart upload around `fill` (which puts the parts and returns
    /// the bytes and parts it put): started with `meta`'s content type and
    /// metadata, completed (no overwrite), aborted if anything fails or the
    /// future is dropped.
    pub(crate) async fn multipart<F, Fut>(
        &self,
        client: &S3Client,
        key: &str,
        what: &str,
        meta: &WriteMeta,
        crc32c_parts: bool,
        fill: F,
    ) -> Result<(u64, Option<String>)>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<(u64, Vec<CompletedPart>)>>,
    {
        let mut create = client.sdk.create_multipart_upload().bucket(&client.bucket).key(key);
        create = new_object_settings!(create, self, meta);
        if crc32c_parts {
            create = create.checksum_algorithm(SdkChecksumAlgorithm::Crc32C);
        }
        let created = create.send().await.map_err(|e| map_sdk_error(e, &format!("{what} (start multipart)")))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StorageError::transient(format!("{what}: server gave no multipart upload id")))?
            .to_owned();
        let guard = AbortGuard {
            sdk: client.sdk.clone(),
            bucket: client.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.clone(),
            armed: true,
        };
        let result = async {
            let (total, completed) = fill(upload_id.clone()).await?;
            self.complete(client, key, &upload_id, what, completed, total).await.map(|etag| (total, etag))
        }
        .await;
        match result {
            Ok(done) => {
                guard.disarm();
                self.locked_or_removed(client, client.object_id(key).unwrap_or(key)).await?;
                Ok(done)
            }
            Err(err) => {
                guard.abort_now().await;
                Err(err)
            }
        }
    }
    /// After an upload or copy completed: the object carries the locks the
    /// instance asks for (servers may drop them from a multipart start or a
    /// copy), else it is no receipt: removed (it is not locked yet) and failed.
    pub(crate) async fn locked_or_removed(&self, client: &S3Client, object_id: &str) -> Result<()> {
        let Err(e) = crate::lock::ensure_locked(client, &self.lock, object_id).await else { return Ok(()) };
        if let Err(gone) = crate::lock::delete_versions(client, object_id).await {
            tracing::warn!(object_id, error = %gone, "could not remove an object whose lock failed");
        }
        Err(e)
    }

    async fn upload_parts(
        &self,
        client: &S3Client,
        key: &str,
        upload_id: &str,
        what: &str,
        parts: impl futures::Stream<Item = Result<BodyPart>> + Send,
    ) -> Result<(u64, Vec<CompletedPart>)> {
        send_parts(parts, self.concurrency, |index, part| async move {
            let number = index as u64 + 1;
            if number > MAX_PARTS {
                return Err(StorageError::invalid_input(format!(
                    "{what}: body needs more than {MAX_PARTS} parts; raise part_size_mb"
                )));
            }
            self.upload_part(client, key, upload_id, number as i32, part, what).await
        })
        .await
    }

    /// Complete a multipart upload of `size` bytes (If-None-Match where the
    /// server has it), resent in place: the parts are stored, so a 503 or a
    /// reset here must not throw them away. A resend after the first
    /// completion landed is refused (`NoSuchUpload`, or 412): then the
    /// object is looked for, as after a lost answer.
    async fn complete(
        &self,
        client: &S3Client,
        key: &str,
        upload_id: &str,
        what: &str,
        completed: Vec<CompletedPart>,
        size: u64,
    ) -> Result<Option<String>> {
        let what = format!("{what} (complete multipart)");
        let object_id = client.object_id(key).unwrap_or(key);
        let (what, completed) = (what.as_str(), &completed);
        let stored = || self.stored_earlier(client, object_id, size, None);
        RetryPolicy::in_place_default()
            .resend_write(what, stored, move |_| async move {
                loop {
                    let if_none_match = self.if_none_match();
                    let sent = if_none_match.is_some();
                    let result = client
                        .sdk
                        .complete_multipart_upload()
                        .bucket(&client.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .multipart_upload(
                            CompletedMultipartUpload::builder().set_parts(Some(completed.clone())).build(),
                        )
                        .set_if_none_match(if_none_match)
                        .send()
                        .await;
                    match result {
                        Ok(out) => return Ok(out.e_tag().map(|e| e.trim_matches('"').to_owned())),
                        Err(e) => {
                            let err = map_sdk_error(e, what);
                            if self.fallback_on(&err, sent) {
                                continue;
                            }
                            return Err(err);
                        }
                    }
                }
            })
            .await
    }

    /// One part, resent in place on transient errors (it is in memory).
    async fn upload_part(
        &self,
        client: &S3Client,
        key: &str,
        upload_id: &str,
        number: i32,
        data: BodyPart,
        what: &str,
    ) -> Result<CompletedPart> {
        let sum = PartChecksum::of(self.checksum, &data);
        let what = format!("{what} (part {number})");
        RetryPolicy::in_place_default()
            .resend(&what, |_| async {
                let req = client
                    .sdk
                    .upload_part()
                    .bucket(&client.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(number)
                    .content_length(data.len() as i64)
                    .body(self.sdk_body(&data));
                let out = checksummed!(req, &sum, self, false).send().await.map_err(|e| map_sdk_error(e, &what))?;
                let etag = out
                    .e_tag()
                    .map(str::to_owned)
                    .ok_or_else(|| StorageError::transient(format!("{what}: server gave no ETag")))?;
                let mut part = CompletedPart::builder().part_number(number).e_tag(etag);
                if let PartChecksum::Crc32c(v) = &sum {
                    part = part.checksum_crc32_c(v);
                }
                Ok(part.build())
            })
            .await
    }
}

/// The checksum header value of one PUT or part.
enum PartChecksum {
    Crc32c(String),
    Md5(String),
    None,
}

impl PartChecksum {
    fn of(algorithm: ChecksumAlgorithm, data: &BodyPart) -> Self {
        let crc = if algorithm == ChecksumAlgorithm::Crc32c { data.crc32c() } else { 0 };
        Self::with_crc32c(algorithm, data, crc)
    }

    /// The checksum of `data` whose CRC32C (`crc`) the caller already has:
    /// a single PUT needs it for its metadata too, and one pass is enough.
    fn with_crc32c(algorithm: ChecksumAlgorithm, data: &BodyPart, crc: u32) -> Self {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        match algorithm {
            ChecksumAlgorithm::Crc32c => PartChecksum::Crc32c(b64(&crc.to_be_bytes())),
            ChecksumAlgorithm::Md5 => {
                use md5::Digest;
                let mut md5 = md5::Md5::new();
                data.chunks().iter().for_each(|c| md5.update(c));
                PartChecksum::Md5(b64(&md5.finalize()))
            }
            ChecksumAlgorithm::None => PartChecksum::None,
        }
    }
}

/// Aborts a multipart upload that neither completed nor was aborted
/// explicitly: the write future was dropped (caller gave up, timeout).
struct AbortGuard {
    sdk: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl AbortGuard {
    fn disarm(mut self) {
        self.armed = false;
    }

    async fn abort_now(mut self) {
        self.armed = false;
        abort_or_log(&self.sdk, &self.bucket, &self.key, &self.upload_id).await;
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(key = %self.key, "multipart upload dropped outside a runtime; it was not aborted");
            return;
        };
        let (sdk, bucket, key, upload_id) =
            (self.sdk.clone(), self.bucket.clone(), self.key.clone(), std::mem::take(&mut self.upload_id));
        handle.spawn(async move { abort_or_log(&sdk, &bucket, &key, &upload_id).await });
    }
}

async fn abort_or_log(sdk: &aws_sdk_s3::Client, bucket: &str, key: &str, upload_id: &str) {
    if let Err(err) = abort(sdk, bucket, key, upload_id).await {
        tracing::warn!(key, error = %err, "could not abort a multipart upload; the stale upload sweep (`csal fsck`) or a bucket lifecycle rule will");
    }
}

/// Abort a multipart upload (tried three times on transient errors; one
/// that is already gone counts as aborted).
pub(crate) async fn abort(sdk: &aws_sdk_s3::Client, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
    let mut attempt = 1u64;
    loop {
        match sdk.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let err = map_sdk_error(e, "abort multipart upload");
                if err.is_not_found() {
                    return Ok(());
                }
                if attempt == 3 || !err.is_transient() {
                    return Err(err);
                }
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                attempt += 1;
            }
        }
    }
}
