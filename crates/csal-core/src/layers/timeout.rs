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

/// The deadlines the timeout layer applies to every operation.
///
/// `#[non_exhaustive]`: new operations may need their own deadline; start
/// from [`TimeoutPolicy::default`] and set fields.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TimeoutPolicy {
    /// Whole-call deadline for validate, stat, delete, list, presign, health.
    pub operation: Duration,
    /// Deadline for a read to return its stream (time to first byte).
    pub first_byte: Duration,
    /// Longest pause between two chunks of a read, or without progress on a write.
    pub idle: Duration,
    /// Deadline for a write's last step, counted from the moment its whole
    /// body was taken (multipart completion, fsync and rename of a large
    /// file on a slow NAS). A write that misses it is not retried: the
    /// provider may have stored the object.
    pub completion: Duration,
}

impl Default for TimeoutPolicy {
    fn default() -> Self {
        TimeoutPolicy {
            operation: Duration::from_secs(60),
            first_byte: Duration::from_secs(60),
            idle: Duration::from_secs(120),
            completion: Duration::from_secs(600),
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

/// Progress clock shared between a write's body stream and its watchdog:
/// when a chunk was last taken, and when the body ended.
#[derive(Clone)]
pub(crate) struct Progress {
    start: Instant,
    last_ms: Arc<AtomicU64>,
    /// Milliseconds since `start` at which the whole body had been taken;
    /// `NOT_DONE` before.
    done_ms: Arc<AtomicU64>,
}

const NOT_DONE: u64 = u64::MAX;

impl Progress {
    pub(crate) fn new() -> Self {
        Progress {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
            done_ms: Arc::new(AtomicU64::new(NOT_DONE)),
        }
    }
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
    pub(crate) fn tick(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }
    /// The body has been taken to its end (first call wins).
    pub(crate) fn body_done(&self) {
        let _ = self.done_ms.compare_exchange(NOT_DONE, self.now_ms(), Ordering::Relaxed, Ordering::Relaxed);
    }
    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
    fn done_at(&self) -> Option<Instant> {
        match self.done_ms.load(Ordering::Relaxed) {
            NOT_DONE => None,
            ms => Some(self.start + Duration::from_millis(ms)),
        }
    }
}

/// Why [`with_progress_watchdog`] gave up on a write.
pub(crate) struct Expired {
    pub(crate) error: StorageError,
    /// The whole body had been sent: the provider may have stored it, so
    /// the write must not be retried under a new id.
    pub(crate) after_body: bool,
}

/// Run a write under two clocks: while the body is being taken, it fails
/// once no chunk has been taken for `idle` (the provider stalled); once the
/// body has ended, the no-progress clock stops and the provider's last step
/// gets `completion` from that moment.
pub(crate) async fn with_progress_watchdog<T>(
    progress: Progress,
    idle: Duration,
    completion: Duration,
    fut: impl Future<Output = Result<T>>,
) -> std::result::Result<Result<T>, Expired> {
    tokio::pin!(fut);
    loop {
        let deadline = match progress.done_at() {
            Some(done) => done + completion,
            None => progress.last() + idle,
        };
        tokio::select! {
            r = &mut fut => return Ok(r),
            _ = tokio::time::sleep_until(deadline) => {
                let now = Instant::now();
                match progress.done_at() {
                    Some(done) if done + completion <= now => {
                        return Err(Expired {
                            error: StorageError::timeout(format!(
                                "the whole body was sent but the provider did not confirm the write within {} s; \
                                 it may have stored the object, so the write is not retried",
                                completion.as_secs_f64()
                            )),
                            after_body: true,
                        });
                    }
                    None if progress.last() + idle <= now => {
                        return Err(Expired {
                            error: StorageError::timeout(format!(
                                "write made no progress for {} s", idle.as_secs_f64()
                            )),
                            after_body: false,
                        });
                    }
                    _ => {}
                }
            }
        }
    }
}
