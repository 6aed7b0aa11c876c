//! Timeouts. Short metadata calls get a whole-call deadline; streaming reads
//! and writes instead get a deadline for the first byte and an idle timeout
//! between chunks, so a 10 GiB upload is not cut off while it is moving.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use crate::error::{Operation, Result, StorageError};
use crate::stream::ByteStream;

#[derive(Debug, Clone, Copy)]
pub struct TimeoutPolicy {
    /// Whole-call deadline for validate, stat, delete, list, presign, health.
    pub operation: Duration,
    /// Deadline for a read to return its stream (time to first byte).
    pub first_byte: Duration,
    /// Longest pause between two chunks of a read, or without progress on a write.
    pub idle: Duration,
}

impl Default for TimeoutPolicy {
    fn default() -> Self {
        TimeoutPolicy {
            operation: Duration::from_secs(60),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(120),
        }
    }
}

/// Run `fut` with a deadline; a miss is a `Timeout` error.
pub async fn with_deadline<T>(op: Operation, limit: Duration, fut: impl Future<Output = Result<T>>) -> Result<T> {
    with_deadline_from(op, Instant::now(), limit, fut).await
}

/// [`with_deadline`] counted from `start` (the caller has read the clock
/// already). A future that is ready at its first poll (a cached or
/// in-memory answer) never arms a timer: that is most of the router's
/// per-operation cost otherwise.
pub async fn with_deadline_from<T>(
    op: Operation,
    start: Instant,
    limit: Duration,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    if let std::task::Poll::Ready(r) = futures::poll!(fut.as_mut()) {
        return r;
    }
    // Boxed: the timer lives only in this slow path, so the futures of
    // fast calls (and the boxes async-trait puts them in) stay small.
    match Box::pin(tokio::time::timeout_at(start + limit, fut)).await {
        Ok(r) => r,
        Err(_) => Err(StorageError::timeout(format!("{op} did not finish within {} s", limit.as_secs_f64()))),
    }
}

/// Fail a read stream whose next chunk takes longer than `idle`.
pub fn idle_timeout_stream(body: ByteStream, idle: Duration) -> ByteStream {
    body.map_stream(move |inner| {
        futures::stream::unfold((inner, false), move |(mut inner, done)| async move {
            if done {
                return None;
            }
            match tokio::time::timeout(idle, inner.next()).await {
                Ok(Some(item)) => {
                    let failed = item.is_err();
                    Some((item, (inner, failed)))
                }
                Ok(None) => None,
                Err(_) => Some((
                    Err(StorageError::timeout(format!("no data for {} s while streaming", idle.as_secs_f64()))),
                    (inner, true),
                )),
            }
        })
    })
}

/// Progress clock shared between a write's body stream and its watchdog.
#[derive(Clone)]
pub(crate) struct Progress {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Progress { start: Instant::now(), last_ms: Arc::new(AtomicU64::new(0)) }
    }
    pub(crate) fn tick(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Run a write, failing it with `Timeout` once no body chunk has been taken
/// for `idle` (the provider stalled). After the body is consumed the
/// provider's own per-request timeouts bound the final call.
pub(crate) async fn with_progress_watchdog<T>(
    progress: Progress,
    idle: Duration,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::pin!(fut);
    loop {
        let deadline = progress.last() + idle;
        tokio::select! {
            r = &mut fut => return r,
            _ = tokio::time::sleep_until(deadline) => {
                if progress.last() + idle <= Instant::now() {
                    return Err(StorageError::timeout(format!(
                        "write made no progress for {} s", idle.as_secs_f64()
                    )));
                }
            }
        }
    }
}
