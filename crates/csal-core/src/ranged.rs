//! Reading one object as several ranged requests at once, delivered in
//! order: a single GET runs at one connection's speed (on S3 about
//! 50-100 MB/s per connection, and a server that reads its file in small
//! steps is slower still), while a few ranges in flight use the bandwidth
//! and the server's cores. The provider does the first request itself (it
//! learns the object's length from it); this module fetches the rest.
//!
//! Memory: each range in flight is gathered whole (so a slow reader never
//! stalls a connection halfway), at most `in_flight` of them plus the one
//! being handed out: about `part x (in_flight + 1)` whatever the size.
//! Each range is retried on its own after a transient failure (it is an
//! idempotent GET), so one reset late in a large read does not fail it.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;

use bytes::Bytes;
use futures::StreamExt;
use tokio::task::JoinHandle;

use crate::error::{ErrorKind, Result, StorageError};
use crate::layers::RetryPolicy;
use crate::stream::ByteStream;

/// The bytes after `first` (which covers the read up to `rest.start`),
/// fetched `part` bytes per request with `fetch(range)`, up to `in_flight`
/// requests at once (counting `first` while it is being read), and
/// delivered in order. `fetch` must answer exactly the bytes of its range
/// of the same object version (S3: `If-Match` on the first answer's ETag);
/// a range answered short or long ends the stream with an integrity error.
///
/// Ranges run as tokio tasks (they progress while the consumer is busy);
/// dropping the stream aborts them.
pub fn read_in_ranges<F, Fut>(
    first: ByteStream,
    rest: Range<u64>,
    part: u64,
    in_flight: usize,
    fetch: F,
) -> impl futures::Stream<Item = Result<Bytes>> + Send + 'static
where
    F: Fn(Range<u64>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ByteStream>> + Send + 'static,
{
    let state = Ranges {
        first: Some(first),
        next: rest.start,
        end: rest.end,
        part: part.max(1),
        in_flight: in_flight.max(1),
        fetch: std::sync::Arc::new(fetch),
        pending: Pending(VecDeque::new()),
        current: VecDeque::new(),
        failed: false,
    };
    futures::stream::unfold(state, |mut state| async move {
        let item = state.next_chunk().await?;
        state.failed = item.is_err();
        Some((item, state))
    })
}

struct Ranges<F> {
    /// The provider's own first answer, streamed as it arrives.
    first: Option<ByteStream>,
    /// Start of the next range to ask for.
    next: u64,
    end: u64,
    part: u64,
    in_flight: usize,
    fetch: std::sync::Arc<F>,
    pending: Pending,
    /// The chunks of the range being handed out.
    current: VecDeque<Bytes>,
    failed: bool,
}

/// Range tasks in order; dropped (the reader went away) they are aborted.
struct Pending(VecDeque<JoinHandle<Result<Vec<Bytes>>>>);

impl Drop for Pending {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl<F, Fut> Ranges<F>
where
    F: Fn(Range<u64>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ByteStream>> + Send + 'static,
{
    async fn next_chunk(&mut self) -> Option<Result<Bytes>> {
        if self.failed {
            return None;
        }
        loop {
            self.start_ranges();
            if let Some(first) = &mut self.first {
                match first.next().await {
                    Some(item) => return Some(item),
                    None => {
                        self.first = None;
                        continue;
                    }
                }
            }
            if let Some(chunk) = self.current.pop_front() {
                return Some(Ok(chunk));
            }
            let task = self.pending.0.pop_front()?;
            match task.await {
                Ok(Ok(chunks)) => self.current = chunks.into(),
                Ok(Err(e)) => return Some(Err(e)),
                Err(e) => return Some(Err(StorageError::transient("a ranged read task failed").with_source(e))),
            }
        }
    }

    /// Keep `in_flight` requests going (the first answer counts while it streams).
    fn start_ranges(&mut self) {
        let busy = usize::from(self.first.is_some());
        while self.next < self.end && self.pending.0.len() + busy < self.in_flight {
            let range = self.next..(self.next + self.part).min(self.end);
            self.next = range.end;
            let fetch = self.fetch.clone();
            self.pending.0.push_back(tokio::spawn(fetch_range(fetch, range)));
        }
    }
}

/// One range, gathered whole and checked for length; transient failures
/// are retried with the default policy.
async fn fetch_range<F, Fut>(fetch: std::sync::Arc<F>, range: Range<u64>) -> Result<Vec<Bytes>>
where
    F: Fn(Range<u64>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<ByteStream>> + Send + 'static,
{
    let policy = RetryPolicy::default();
    let mut attempt = 1;
    loop {
        let err = match gather(fetch(range.clone()).await, range.end - range.start).await {
            Ok(chunks) => return Ok(chunks),
            Err(e) => e,
        };
        match policy.delay_after(attempt, &err) {
            Some(delay) => {
                tracing::debug!(start = range.start, end = range.end, attempt, error = %err, "retrying a range");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            None => return Err(err),
        }
    }
}

async fn gather(body: Result<ByteStream>, expected: u64) -> Result<Vec<Bytes>> {
    let mut body = body?;
    let (mut chunks, mut got) = (Vec::new(), 0u64);
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        got += chunk.len() as u64;
        if got > expected {
            break;
        }
        chunks.push(chunk);
    }
    if got != expected {
        return Err(StorageError::new(
            ErrorKind::Integrity,
            format!("a ranged read answered {got} bytes where {expected} were asked for"),
        ));
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn object(len: usize) -> Bytes {
        (0..len).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>().into()
    }

    async fn collect(stream: impl futures::Stream<Item = Result<Bytes>>) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn ranges_arrive_in_order_whatever_order_they_finish_in() {
        let data = object(1000);
        let first = ByteStream::from_bytes(data.slice(0..100));
        let source = data.clone();
        let stream = read_in_ranges(first, 100..1000, 64, 4, move |r: Range<u64>| {
            let source = source.clone();
            async move {
                // Later ranges answer sooner.
                tokio::time::sleep(std::time::Duration::from_millis(20 - (r.start / 64).min(19))).await;
                Ok(ByteStream::from_bytes(source.slice(r.start as usize..r.end as usize)))
            }
        });
        assert_eq!(collect(stream).await.unwrap(), data.to_vec());
    }

    #[tokio::test]
    async fn no_more_than_in_flight_requests_run_at_once() {
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let data = object(4096);
        let (r2, m2, source) = (running.clone(), most.clone(), data.clone());
        let stream = read_in_ranges(ByteStream::from_bytes(data.slice(0..256)), 256..4096, 256, 3, move |r| {
            let (running, most, source) = (r2.clone(), m2.clone(), source.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(ByteStream::from_bytes(source.slice(r.start as usize..r.end as usize)))
            }
        });
        assert_eq!(collect(stream).await.unwrap(), data.to_vec());
        assert!(most.load(Ordering::SeqCst) <= 3, "{} ranges ran at once", most.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_short_range_is_an_integrity_error_and_ends_the_stream() {
        let data = object(300);
        let source = data.clone();
        let stream = read_in_ranges(ByteStream::from_bytes(data.slice(0..100)), 100..300, 100, 2, move |r| {
            let source = source.clone();
            async move { Ok(ByteStream::from_bytes(source.slice(r.start as usize..r.end as usize - 1))) }
        });
        let mut stream = std::pin::pin!(stream);
        let mut got = 0;
        let err = loop {
            match stream.next().await.expect("the stream ended without an error") {
                Ok(chunk) => got += chunk.len(),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert_eq!(got, 100, "only the first answer's bytes came before the error");
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_range_that_fails_once_is_fetched_again() {
        let data = object(500);
        let calls = Arc::new(AtomicUsize::new(0));
        let (c2, source) = (calls.clone(), data.clone());
        let stream = read_in_ranges(ByteStream::from_bytes(data.slice(0..100)), 100..500, 200, 2, move |r| {
            let (calls, source) = (c2.clone(), source.clone());
            async move {
                if r.start == 300 && calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(StorageError::transient("connection reset"));
                }
                Ok(ByteStream::from_bytes(source.slice(r.start as usize..r.end as usize)))
            }
        });
        assert_eq!(collect(stream).await.unwrap(), data.to_vec());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn dropping_the_stream_aborts_the_ranges_in_flight() {
        let data = object(1000);
        let started = Arc::new(AtomicUsize::new(0));
        let s2 = started.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let tx = std::sync::Mutex::new(Some(tx));
        let stream = read_in_ranges(ByteStream::from_bytes(data.slice(0..100)), 100..1000, 100, 3, move |_r| {
            s2.fetch_add(1, Ordering::SeqCst);
            // Held by the task until it is aborted: the sender drops then.
            let guard = tx.lock().unwrap().take();
            async move {
                let _guard = guard;
                std::future::pending::<Result<ByteStream>>().await
            }
        });
        let mut stream = Box::pin(stream);
        assert!(stream.next().await.unwrap().is_ok());
        // The range tasks run once this (single-threaded) test yields.
        for _ in 0..1000 {
            if started.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(started.load(Ordering::SeqCst) > 0, "no range was started");
        drop(stream);
        // The first range task held the sender: its abort drops it.
        tokio::time::timeout(std::time::Duration::from_secs(10), rx)
            .await
            .expect("the range task was not aborted")
            .unwrap_err();
    }
}
