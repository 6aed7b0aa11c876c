//! [`LayeredModule`]: a provider wrapped in every core layer.
//!
//! Order, outermost first: tracing span → metrics → input checks → retry →
//! timeout → provider. Errors leaving it carry instance, provider and
//! operation, and have the instance's secret values scrubbed out.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::Instrument;

use super::LayerConfig;
use super::metrics::ModuleMetrics;
use super::timeout::{Progress, idle_timeout_stream, with_deadline, with_deadline_from, with_progress_watchdog};
use crate::error::{ErrorKind, Operation, Result, StorageError};
use crate::ids::check_object_id;
use crate::module::{
    Capabilities, Checksum, HealthReport, HealthStatus, ListPage, ListRequest, ObjectMeta, StaleUploads, StorageModule,
    WriteMeta, WriteReceipt,
};
use crate::range::ByteRange;
use crate::stream::ByteStream;

/// A provider module with the core layers around it. The router hands these
/// out; it is itself a `StorageModule`.
pub struct LayeredModule {
    inner: Arc<dyn StorageModule>,
    name: String,
    provider_type: String,
    secrets: Vec<String>,
    config: LayerConfig,
    metrics: ModuleMetrics,
    last_health: Mutex<Option<HealthReport>>,
}

impl LayeredModule {
    /// Wrap `inner` (the provider's module of instance `name`) in the layers; `secrets` are the config's secret values to scrub from errors.
    pub fn new(
        inner: Arc<dyn StorageModule>,
        name: impl Into<String>,
        provider_type: impl Into<String>,
        secrets: Vec<String>,
        config: LayerConfig,
    ) -> Self {
        let (name, provider_type) = (name.into(), provider_type.into());
        LayeredModule {
            metrics: ModuleMetrics::new(&name, &provider_type),
            inner,
            name,
            provider_type,
            secrets,
            config,
            last_health: Mutex::new(None),
        }
    }

    /// The report of the most recent health check, if any.
    pub fn last_health(&self) -> Option<HealthReport> {
        self.last_health.lock().expect("health lock").clone()
    }

    /// Add to the last health report what the provider cannot know itself
    /// (the capacity forecast from the segment index: details, or a
    /// downgrade to `degraded`). Does nothing before the first check; the
    /// next check replaces the report, so the caller amends after each.
    pub fn amend_last_health(&self, amend: impl FnOnce(&mut HealthReport)) {
        if let Some(report) = self.last_health.lock().expect("health lock").as_mut() {
            amend(report);
        }
    }

    /// The provider module without layers (for benchmarks and tests).
    pub fn inner(&self) -> &Arc<dyn StorageModule> {
        &self.inner
    }

    fn decorate(&self, err: StorageError, op: Operation) -> StorageError {
        err.with_context_if_missing(&self.provider_type, &self.name, op).redact(&self.secrets)
    }

    /// The span of one operation. Its fields are what a trace backend
    /// shows (never a secret, an object's content or a config value):
    /// `bytes` is filled in by writes (and reads of a known size),
    /// `error_kind` when the operation fails.
    fn span(&self, op: Operation) -> tracing::Span {
        tracing::info_span!(
            "csal",
            module = %self.name,
            provider = %self.provider_type,
            operation = op.as_str(),
            bytes = tracing::field::Empty,
            error_kind = tracing::field::Empty,
        )
    }

    fn finish<T>(&self, op: Operation, span: &tracing::Span, started: Instant, result: Result<T>) -> Result<T> {
        let result = result.map_err(|e| self.decorate(e, op));
        let elapsed = started.elapsed();
        let kind = result.as_ref().err().map(StorageError::kind);
        self.metrics.record(op, elapsed, kind);
        if let Some(kind) = kind {
            span.record("error_kind", super::metrics::kind_label(kind));
        }
        let _entered = span.enter();
        match &result {
            Ok(_) => tracing::debug!(elapsed_ms = elapsed.as_millis() as u64, "ok"),
            Err(e) if e.kind() == ErrorKind::NotFound => tracing::debug!(error = %e, "not found"),
            Err(e) => tracing::warn!(error = %e, kind = ?e.kind(), "failed"),
        }
        result
    }

    /// Run an idempotent call with deadline and retries. `started` is when
    /// the first attempt starts (one clock read serves the metrics and the deadline).
    async fn retrying<T, F, Fut>(&self, op: Operation, started: Instant, limit: Duration, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        let mut attempt_start = started;
        loop {
            match with_deadline_from(op, attempt_start.into(), limit, call()).await {
                Err(e) => match self.config.retry.delay_after(attempt, &e) {
                    Some(delay) if op.is_idempotent() => {
                        tracing::info!(attempt, delay_ms = delay.as_millis() as u64, error = %self.decorate(e, op), "retrying");
                        self.metrics.retry();
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                        attempt_start = Instant::now();
                    }
                    _ => return Err(e),
                },
                ok => return ok,
            }
        }
    }

    /// A short call: deadline, retries, metrics, tracing.
    async fn call<T, F, Fut>(&self, op: Operation, call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let started = Instant::now();
        let span = self.span(op);
        let result = self.retrying(op, started, self.config.timeouts.operation, call).instrument(span.clone()).await;
        self.finish(op, &span, started, result)
    }

    /// One write attempt. The failure says whether the write may be tried
    /// again under a new id (nothing of this attempt is left behind).
    async fn write_once(&self, body: ByteStream, meta: WriteMeta) -> std::result::Result<WriteReceipt, WriteFailure> {
        let declared = body.size();
        let body = self.config.bandwidth.pace(&self.name, body);
        let body = match declared {
            Some(len) => body.expect_len(len),
            None => body,
        };
        let progress = Progress::new();
        // What the write actually consumed; a single-PUT provider takes its
        // checksum from this tally too (one CRC32C pass for both).
        let (body, tally) = body.tallied();
        let (p, t) = (progress.clone(), tally.clone());
        let body = body.inspect_chunks(move |_| {
            p.tick();
            // A provider that knows the size may never ask past the last byte.
            if t.bytes() == declared.unwrap_or(u64::MAX) {
                p.body_done();
            }
        });
        let p = progress.clone();
        let body = body.map_stream(move |s| {
            futures::StreamExt::chain(
                s,
                futures::stream::poll_fn(move |_| {
                    p.body_done();
                    std::task::Poll::Ready(None)
                }),
            )
        });
        let timeouts = &self.config.timeouts;
        let written =
            with_progress_watchdog(progress, timeouts.idle, timeouts.completion, self.inner.write(body, meta))
                .await
                .map_err(|expired| WriteFailure { error: expired.error, may_retry: !expired.after_body })?;
        let mut receipt = written.map_err(|error| WriteFailure { error, may_retry: true })?;
        let (consumed, crc) = (tally.bytes(), tally.crc32c());
        let mismatch = match declared {
            Some(len) if consumed != len => {
                Some(format!("provider took {consumed} of the body's {len} bytes and reported success"))
            }
            _ if receipt.size != consumed => {
                Some(format!("provider reported {} bytes stored but {consumed} were sent", receipt.size))
            }
            _ => None,
        };
        if let Some(problem) = mismatch {
            let removed = self.discard(&receipt.object_id).await;
            return Err(WriteFailure { error: StorageError::integrity(problem), may_retry: removed });
        }
        if receipt.checksum.is_none() {
            receipt.checksum = Some(Checksum::crc32c(crc));
        }
        receipt.instance = Some(self.name.clone());
        self.metrics.written_bytes().increment(consumed);
        tracing::Span::current().record("bytes", consumed);
        Ok(receipt)
    }

    /// Read a whole object and check it against `expected` (a CRC32C the
    /// caller kept, such as the segment index's), besides any checksum the
    /// provider kept: the stream ends with `Integrity` on a mismatch.
    pub async fn read_verified(&self, object_id: &str, expected: &Checksum) -> Result<ByteStream> {
        self.read_checked(object_id, None, Some(expected)).await
    }

    /// The read path. A full read is verified against the checksum the
    /// provider kept (when it hands one back) and the caller's `expected`;
    /// a ranged read cannot be (no provider here offers part checksums).
    /// The check fails at the end of the stream, where the layer's retries
    /// no longer apply: the caller decides whether to read again.
    async fn read_checked(
        &self,
        object_id: &str,
        range: Option<ByteRange>,
        expected: Option<&Checksum>,
    ) -> Result<ByteStream> {
        let op = Operation::Read;
        let started = Instant::now();
        let span = self.span(op);
        let result = async {
            check_object_id(object_id)?;
            if let Some(r) = &range {
                r.check()?;
            }
            if let Some(want) = expected
                && want.crc32c_value().is_none()
            {
                return Err(StorageError::invalid_input(format!(
                    "expected checksum must be crc32c with 8 hex digits, not {}:{}",
                    want.algorithm, want.value
                )));
            }
            let mut body = self
                .retrying(op, started, self.config.timeouts.first_byte, || self.inner.read(object_id, range))
                .await?;
            if let Some(size) = body.size() {
                tracing::Span::current().record("bytes", size);
            }
            if range.is_none() {
                let what = format!("object '{object_id}'");
                let stored = body.stored_checksum().filter(|c| c.crc32c_value().is_some()).cloned();
                // A source that checks its stored checksum itself needs no second pass for it.
                let checked = stored.clone().filter(|_| body.stored_checksum_is_checked());
                let wanted = [expected.cloned(), stored.filter(|s| expected != Some(s))].into_iter().flatten();
                for want in wanted.filter(|w| checked.as_ref() != Some(w)) {
                    body = body.verify(&want, &what)?;
                }
            }
            Ok(body)
        }
        .instrument(span.clone())
        .await;
        let body = self.finish(op, &span, started, result)?;
        let read_bytes = self.metrics.read_bytes();
        let (provider, name, secrets) = (self.provider_type.clone(), self.name.clone(), self.secrets.clone());
        let body = idle_timeout_stream(body, self.config.timeouts.idle)
            .inspect_chunks(move |chunk| read_bytes.increment(chunk.len() as u64))
            .map_stream(move |s| {
                futures::StreamExt::map(s, move |item| {
                    item.map_err(|e| e.with_context_if_missing(&provider, &name, op).redact(&secrets))
                })
            });
        Ok(body)
    }

    /// Delete the object of a write that failed its checks, so neither it
    /// nor a retry's copy is left as a duplicate. Best effort: a failure is
    /// logged (with the id, for the operator) and reported as `false`.
    async fn discard(&self, object_id: &str) -> bool {
        let op = Operation::Delete;
        match with_deadline(op, self.config.timeouts.operation, self.inner.delete(object_id)).await {
            Ok(()) => {
                tracing::info!(object_id, "deleted the object of a write that failed its checks");
                true
            }
            Err(e) => {
                tracing::warn!(object_id, error = %self.decorate(e, op), "could not delete the object of a write that failed its checks; remove it by hand");
                false
            }
        }
    }
}

/// A failed write attempt.
struct WriteFailure {
    error: StorageError,
    /// False when a retry could leave a second copy (the provider may have
    /// stored this attempt, or its bad object could not be deleted).
    may_retry: bool,
}

fn check_write_meta(meta: &WriteMeta) -> Result<()> {
    if meta.key_hint.len() > 4096 {
        return Err(StorageError::invalid_input("key hint is longer than 4096 bytes"));
    }
    if let Some(ct) = &meta.content_type
        && (ct.is_empty() || ct.len() > 255 || ct.chars().any(|c| c.is_control()))
    {
        return Err(StorageError::invalid_input("content type is empty, too long or has control characters"));
    }
    for (k, v) in &meta.metadata {
        let key_ok =
            !k.is_empty() && k.len() <= 128 && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !key_ok {
            return Err(StorageError::invalid_input(format!(
                "metadata key {k:?} must be 1-128 ASCII letters, digits, '-' or '_'"
            )));
        }
        if v.len() > 2048 || v.chars().any(|c| c.is_control()) {
            return Err(StorageError::invalid_input(format!(
                "metadata value of {k:?} is too long or has control characters"
            )));
        }
    }
    Ok(())
}

#[async_trait]
impl StorageModule for LayeredModule {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn validate(&self) -> Result<()> {
        self.call(Operation::Validate, || self.inner.validate()).await
    }

    async fn refresh_credentials(&self) -> Result<()> {
        self.call(Operation::RefreshCredentials, || self.inner.refresh_credentials()).await
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        let op = Operation::Write;
        let started = Instant::now();
        let span = self.span(op);
        let result = async {
            check_write_meta(&meta)?;
            let mut body = Some(body);
            let mut attempt = 1;
            loop {
                let this_body = body.take().expect("a body for every attempt");
                let spare = this_body.try_clone();
                match self.write_once(this_body, meta.clone()).await {
                    Err(WriteFailure { error: e, may_retry }) => match (self.config.retry.delay_after(attempt, &e), spare) {
                        (Some(delay), Some(spare)) if may_retry => {
                            tracing::info!(attempt, delay_ms = delay.as_millis() as u64, error = %self.decorate(e, op), "retrying write");
                            self.metrics.retry();
                            tokio::time::sleep(delay).await;
                            body = Some(spare);
                            attempt += 1;
                        }
                        _ => return Err(e),
                    },
                    Ok(receipt) => return Ok(receipt),
                }
            }
        }
        .instrument(span.clone())
        .await;
        self.finish(op, &span, started, result)
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        self.read_checked(object_id, range, None).await
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        self.call(Operation::Delete, || async move {
            check_object_id(object_id)?;
            self.inner.delete(object_id).await
        })
        .await
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        self.call(Operation::List, || async move {
            request.check()?;
            self.inner.list(request).await
        })
        .await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        self.call(Operation::Stat, || async move {
            check_object_id(object_id)?;
            self.inner.stat(object_id).await
        })
        .await
    }

    /// Never fails: a timeout or panic-free error becomes an `offline` report.
    async fn health_check(&self) -> HealthReport {
        let op = Operation::HealthCheck;
        let started = Instant::now();
        let limit = self.config.timeouts.operation;
        let report = async {
            match tokio::time::timeout(limit, self.inner.health_check()).await {
                Ok(mut report) => {
                    if let Some(err) = report.last_error.take() {
                        report.last_error = Some(scrub_text(&err, &self.secrets));
                    }
                    report
                }
                Err(_) => HealthReport::offline(&self.decorate(
                    StorageError::timeout(format!("health check did not answer within {} s", limit.as_secs())),
                    op,
                )),
            }
        }
        .instrument(self.span(op))
        .await;
        let failed = (report.status == HealthStatus::Offline).then_some(ErrorKind::Unavailable);
        self.metrics.record(op, started.elapsed(), failed);
        *self.last_health.lock().expect("health lock") = Some(report.clone());
        report
    }

    /// Server-side when the provider can (one call, the write's completion
    /// deadline: the server moves the bytes; never retried, since a lost
    /// answer would leave a second copy); otherwise streamed through these
    /// layers: a verified full read into a write (upload limits, CRC32C).
    async fn copy(&self, object_id: &str, meta: WriteMeta) -> Result<WriteReceipt> {
        if !self.inner.capabilities().server_side_copy {
            let body = self.read(object_id, None).await?;
            return self.write(body, meta).await;
        }
        let op = Operation::Copy;
        let started = Instant::now();
        let span = self.span(op);
        let result = async {
            check_object_id(object_id)?;
            check_write_meta(&meta)?;
            let call = || self.inner.copy(object_id, meta.clone());
            let mut receipt = self.retrying(op, started, self.config.timeouts.completion, call).await?;
            receipt.instance = Some(self.name.clone());
            Ok(receipt)
        }
        .instrument(span.clone())
        .await;
        self.finish(op, &span, started, result)
    }

    async fn presign_read(&self, object_id: &str, expires_in: Duration) -> Result<String> {
        self.call(Operation::Presign, || async move {
            check_object_id(object_id)?;
            if expires_in.is_zero() || expires_in > Duration::from_secs(7 * 24 * 3600) {
                return Err(StorageError::invalid_input("presign expiry must be between 1 s and 7 days"));
            }
            self.inner.presign_read(object_id, expires_in).await
        })
        .await
    }

    async fn set_legal_hold(&self, object_id: &str, hold: bool) -> Result<()> {
        self.call(Operation::SetLegalHold, || async move {
            check_object_id(object_id)?;
            self.inner.set_legal_hold(object_id, hold).await
        })
        .await
    }

    /// Listing and aborting leftovers may take many calls: the whole-call
    /// deadline is the completion one, not the short operation one.
    async fn stale_uploads(&self, remove: bool) -> Result<StaleUploads> {
        let op = Operation::StaleUploads;
        let started = Instant::now();
        let span = self.span(op);
        let result = self
            .retrying(op, started, self.config.timeouts.completion, || self.inner.stale_uploads(remove))
            .instrument(span.clone())
            .await;
        self.finish(op, &span, started, result)
    }

    async fn shutdown(&self) -> Result<()> {
        let started = Instant::now();
        let span = self.span(Operation::Shutdown);
        let result = self.inner.shutdown().instrument(span.clone()).await;
        self.finish(Operation::Shutdown, &span, started, result)
    }
}

fn scrub_text(text: &str, secrets: &[String]) -> String {
    StorageError::permanent(text.to_owned()).redact(secrets).message().to_owned()
}
