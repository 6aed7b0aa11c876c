//! `ByteStream`: the body of every write and read.
//!
//! A stream of `Bytes` chunks with an optional known length and an optional
//! way to replay it from the start. Write paths pull it chunk by chunk, so
//! memory stays bounded whatever the object size; the retry layer replays a
//! write only when the body says it can be replayed (bytes in memory, a file
//! on disk).

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::stream::{BoxStream, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWrite, AsyncWriteExt};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::error::{Result, StorageError};
use crate::module::Checksum;

/// Chunk size used when reading files and readers (256 KiB: large enough for
/// throughput, small enough to keep memory flat).
pub const DEFAULT_CHUNK_SIZE: usize = 256 * 1024;

type Replay = Arc<dyn Fn() -> ByteStream + Send + Sync>;

/// A body of bytes, produced chunk by chunk.
pub struct ByteStream {
    inner: BoxStream<'static, Result<Bytes>>,
    size: Option<u64>,
    replay: Option<Replay>,
    /// What the source says these bytes hash to (a CRC32C kept at write);
    /// the core layer checks it on a full read ([`ByteStream::verify`])
    /// unless the source checks it itself.
    stored_checksum: Option<StoredChecksum>,
    /// The CRC32C of the bytes that have passed so far (see [`ByteStream::tallied`]).
    tally: Option<Crc32cTally>,
}

impl ByteStream {
    /// Wrap any stream of chunks. `size` is the exact total length if known.
    pub fn new<S>(stream: S, size: Option<u64>) -> Self
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        ByteStream { inner: stream.boxed(), size, replay: None, stored_checksum: None, tally: None }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::from_bytes(Bytes::new())
    }

    /// A body held in memory. Replayable.
    pub fn from_bytes(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        let len = data.len() as u64;
        let replay_data = data.clone();
        let stream = if data.is_empty() {
            futures::stream::empty().boxed()
        } else {
            futures::stream::once(async move { Ok(data) }).boxed()
        };
        ByteStream {
            inner: stream,
            size: Some(len),
            replay: Some(Arc::new(move || ByteStream::from_bytes(replay_data.clone()))),
            stored_checksum: None,
            tally: None,
        }
    }

    /// A body given as a list of chunks (kept as they are). Replayable.
    pub fn from_chunks(chunks: Vec<Bytes>) -> Self {
        let len = chunks.iter().map(|c| c.len() as u64).sum();
        let replay_chunks = chunks.clone();
        ByteStream {
            inner: futures::stream::iter(chunks.into_iter().map(Ok)).boxed(),
            size: Some(len),
            replay: Some(Arc::new(move || ByteStream::from_chunks(replay_chunks.clone()))),
            stored_checksum: None,
            tally: None,
        }
    }

    /// A body read from any `AsyncRead` in chunks of `chunk_size`. Not replayable.
    pub fn from_reader<R>(reader: R, chunk_size: usize, size: Option<u64>) -> Self
    where
        R: AsyncRead + Send + 'static,
    {
        let stream = ReaderStream::with_capacity(reader, chunk_size).map(|r| r.map_err(StorageError::from));
        ByteStream::new(stream, size)
    }

    /// A body read from a file, opened lazily. Replayable (the file is reopened).
    pub async fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let size = tokio::fs::metadata(&path).await?.len();
        Ok(Self::from_file_with_size(path, size))
    }

    fn from_file_with_size(path: PathBuf, size: u64) -> Self {
        let open_path = path.clone();
        let stream = futures::stream::once(async move {
            let file = tokio::fs::File::open(&open_path).await.map_err(StorageError::from)?;
            Ok::<_, StorageError>(
                ReaderStream::with_capacity(file, DEFAULT_CHUNK_SIZE).map(|r| r.map_err(StorageError::from)),
            )
        })
        .map(|opened| match opened {
            Ok(s) => s.boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten();
        ByteStream {
            inner: stream.boxed(),
            size: Some(size),
            replay: Some(Arc::new(move || ByteStream::from_file_with_size(path.clone(), size))),
            stored_checksum: None,
            tally: None,
        }
    }

    /// A window of a file (`offset`, `len`): what a ranged read of a local
    /// file returns. Not replayable (the caller holds the file open).
    pub async fn from_file_range(mut file: tokio::fs::File, offset: u64, len: u64) -> Result<Self> {
        if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset)).await?;
        }
        let reader = tokio::io::AsyncReadExt::take(file, len);
        let expected = len;
        Ok(ByteStream::from_reader(reader, DEFAULT_CHUNK_SIZE, Some(len)).expect_len(expected))
    }

    /// The exact total length, when known.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// Set the exact total length (for streams whose source knows it).
    pub fn with_size(mut self, size: Option<u64>) -> Self {
        self.size = size;
        self
    }

    /// Declare how to produce this body again from the start (used by retries).
    pub fn with_replay(mut self, replay: impl Fn() -> ByteStream + Send + Sync + 'static) -> Self {
        self.replay = Some(Arc::new(replay));
        self
    }

    /// A fresh copy of this body from its start, if it can be replayed.
    pub fn try_clone(&self) -> Option<ByteStream> {
        self.replay.as_ref().map(|r| r())
    }

    /// Whether [`ByteStream::try_clone`] can replay it (so the retry layer may retry a write).
    pub fn is_replayable(&self) -> bool {
        self.replay.is_some()
    }

    /// The checksum the source kept for these bytes (see [`Self::with_stored_checksum`]).
    pub fn stored_checksum(&self) -> Option<&Checksum> {
        self.stored_checksum.as_ref().map(|s| &s.checksum)
    }

    /// Whether the source checks the bytes against [`Self::stored_checksum`]
    /// itself (see [`Self::with_checked_stored_checksum`]).
    pub fn stored_checksum_is_checked(&self) -> bool {
        self.stored_checksum.as_ref().is_some_and(|s| s.checked_by_source)
    }

    /// Say what the whole object hashed to when it was written: a provider
    /// sets it on a full read when it keeps the CRC32C (object metadata, an
    /// xattr), and the core layer verifies the bytes against it.
    pub fn with_stored_checksum(mut self, checksum: Option<Checksum>) -> Self {
        self.stored_checksum = checksum.map(|checksum| StoredChecksum { checksum, checked_by_source: false });
        self
    }

    /// Like [`Self::with_stored_checksum`], for a source that already checks
    /// the bytes against this CRC32C as it produces them, ending the stream
    /// with [`StorageError::crc32c_mismatch`] on a mismatch (local_fs hashes
    /// on its reader thread, beside the read): the core layer then does not
    /// hash them a second time.
    pub fn with_checked_stored_checksum(mut self, checksum: Checksum) -> Self {
        self.stored_checksum = Some(StoredChecksum { checksum, checked_by_source: true });
        self
    }

    /// Pass the bytes through, ending with `Integrity` if their CRC32C is not
    /// `expected`: a corrupted object is never delivered as good. The error
    /// comes where the stream would end, so a reader has all bytes but no
    /// success. `what` names the object in the error. Only CRC32C can be
    /// checked; any other algorithm is `InvalidInput`.
    pub fn verify(self, expected: &Checksum, what: &str) -> Result<Self> {
        let want = expected.crc32c_value().ok_or_else(|| {
            StorageError::invalid_input(format!(
                "cannot verify a {} checksum of {what}: only crc32c (8 hex digits) is supported",
                expected.algorithm
            ))
        })?;
        let check = CrcCheck { crc: 0, want, what: what.to_owned() };
        let checked = Checked { inner: self.inner, check, finished: false };
        Ok(ByteStream { inner: checked.boxed(), ..self })
    }

    /// Fail with `Integrity` if the stream ends before (or runs past) `len`
    /// bytes: a truncated body must never look like success.
    pub fn expect_len(self, len: u64) -> Self {
        let checked = Checked { inner: self.inner, check: LengthCheck { expected: len, seen: 0 }, finished: false };
        ByteStream { inner: checked.boxed(), size: Some(len), ..self }
    }

    /// Bytes `skip..skip + take` of this stream, streamed: for servers that
    /// answer a ranged request with the whole body (or a wider range). Ends
    /// with `Integrity` if the body is too short to fill the window.
    pub fn window(self, skip: u64, take: u64) -> Self {
        let stream = futures::stream::unfold((self, skip, take), |(mut body, mut skip, mut take)| async move {
            loop {
                if take == 0 {
                    return None;
                }
                let mut chunk = match body.next().await? {
                    Ok(c) => c,
                    Err(e) => return Some((Err(e), (body, 0, 0))),
                };
                if skip >= chunk.len() as u64 {
                    skip -= chunk.len() as u64;
                    continue;
                }
                let mut chunk = chunk.split_off(skip as usize);
                skip = 0;
                chunk.truncate(chunk.len().min(take as usize));
                take -= chunk.len() as u64;
                return Some((Ok(chunk), (body, skip, take)));
            }
        });
        ByteStream::new(stream, Some(take)).expect_len(take)
    }

    /// Count the bytes and their CRC32C as they pass, in one pass. The tally
    /// travels with the stream ([`Self::crc32c_tally`]), so a provider that
    /// holds a whole body before sending it (a single PUT) can take the
    /// checksum from it instead of hashing the bytes a second time.
    pub fn tallied(self) -> (Self, Crc32cTally) {
        let tally = Crc32cTally::default();
        let t = tally.clone();
        let mut body = self.inspect_chunks(move |chunk| t.add(chunk));
        body.tally = Some(tally.clone());
        (body, tally)
    }

    /// The running tally of the bytes that have passed, if one was added upstream.
    pub fn crc32c_tally(&self) -> Option<&Crc32cTally> {
        self.tally.as_ref()
    }

    /// Feed every chunk to `observe` as it passes (checksums, byte counters).
    pub fn inspect_chunks(self, mut observe: impl FnMut(&Bytes) + Send + 'static) -> Self {
        let inner = self.inner.inspect(move |item| {
            if let Ok(chunk) = item {
                observe(chunk)
            }
        });
        ByteStream { inner: inner.boxed(), ..self }
    }

    /// Map the stream (errors and chunks), keeping size and replay.
    pub fn map_stream<F, S>(self, f: F) -> Self
    where
        F: FnOnce(BoxStream<'static, Result<Bytes>>) -> S,
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        ByteStream { inner: f(self.inner).boxed(), ..self }
    }

    /// Regroup the body into parts of exactly `part_size` bytes (the last one
    /// may be shorter; an empty body gives no parts). Memory: one part.
    /// Each part is one contiguous buffer (a copy of the chunks, unless one
    /// chunk is the whole part); see [`ByteStream::into_chunked_parts`] for
    /// parts that keep the body's chunks.
    pub fn into_parts(self, part_size: usize) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
        self.into_chunked_parts(part_size).map(|part| part.map(BodyPart::into_bytes))
    }

    /// Regroup the body into parts of exactly `part_size` bytes (the last one
    /// may be shorter; an empty body gives no parts) without copying: a part
    /// holds the body's own chunks, the one on a boundary sliced in two. For
    /// providers whose client can send a part as several buffers: no memcpy
    /// into a part buffer and no fresh pages to fault in for every part.
    /// Memory: one part. A full part is handed on at once, without waiting
    /// for the body's next chunk (which a slow source may be long in giving).
    pub fn into_chunked_parts(self, part_size: usize) -> impl Stream<Item = Result<BodyPart>> + Send + 'static {
        self.regroup(part_size, 0).map(|part| part.map(|(part, _)| part))
    }

    /// [`ByteStream::into_chunked_parts`], each part paired with whether it
    /// is the body's last. That is learnt by reading at most one chunk past
    /// the part, not a whole part ahead, so a protocol that must flag its
    /// final request (a GCS resumable upload, a single Put Blob) holds one
    /// part, not two.
    pub fn into_chunked_parts_marking_last(
        self,
        part_size: usize,
    ) -> impl Stream<Item = Result<(BodyPart, bool)>> + Send + 'static {
        self.regroup(part_size, usize::MAX)
    }

    /// [`ByteStream::into_chunked_parts`], the first part paired with
    /// whether it is the whole body (one request or several: S3's single PUT
    /// or multipart, Azure's Put Blob or blocks), learnt by reading one chunk
    /// past it. The parts after it flow as in `into_chunked_parts` (flag
    /// false): none waits for the chunk after it.
    pub fn into_chunked_parts_marking_if_single(
        self,
        part_size: usize,
    ) -> impl Stream<Item = Result<(BodyPart, bool)>> + Send + 'static {
        self.regroup(part_size, 1)
    }

    /// The regrouping behind the three: each of the first `marked` full
    /// parts waits for one more chunk (or the end) to say whether it is the
    /// last; the flag of any later part is false.
    fn regroup(self, part_size: usize, marked: usize) -> impl Stream<Item = Result<(BodyPart, bool)>> + Send + 'static {
        assert!(part_size > 0, "part size must be positive");
        futures::stream::unfold(
            (self.inner, BodyPart::default(), false, marked),
            move |(mut inner, mut part, mut ended, marked)| async move {
                let mark_last = marked > 0;
                let marked = marked.saturating_sub(1);
                loop {
                    if part.len >= part_size {
                        let mut rest = part.split_off(part_size);
                        while mark_last && rest.is_empty() && !ended {
                            match inner.next().await {
                                Some(Ok(chunk)) => rest.push(chunk),
                                Some(Err(e)) => return Some((Err(e), (inner, BodyPart::default(), true, 0))),
                                None => ended = true,
                            }
                        }
                        let last = mark_last && ended && rest.is_empty();
                        return Some((Ok((part, last)), (inner, rest, ended, marked)));
                    }
                    if ended {
                        if part.is_empty() {
                            return None;
                        }
                        return Some((Ok((part, mark_last)), (inner, BodyPart::default(), ended, marked)));
                    }
                    match inner.next().await {
                        Some(Ok(chunk)) => part.push(chunk),
                        Some(Err(e)) => return Some((Err(e), (inner, BodyPart::default(), true, 0))),
                        None => ended = true,
                    }
                }
            },
        )
    }

    /// An `AsyncRead` over the body (for SDKs and copy helpers).
    pub fn into_async_read(self) -> impl AsyncRead + Send + Unpin + 'static {
        StreamReader::new(self.inner.map(|r| r.map_err(std::io::Error::other)))
    }

    /// Copy the whole body into `writer`; returns the number of bytes.
    pub async fn write_to<W: AsyncWrite + Unpin>(mut self, writer: &mut W) -> Result<u64> {
        let mut total = 0u64;
        while let Some(chunk) = self.inner.next().await {
            let chunk = chunk?;
            writer.write_all(&chunk).await?;
            total += chunk.len() as u64;
        }
        writer.flush().await?;
        Ok(total)
    }

    /// Collect into memory, refusing bodies over `limit` bytes. For tests and
    /// small control objects only; write paths never call this.
    pub async fn collect_limited(mut self, limit: usize) -> Result<Bytes> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = self.inner.next().await {
            let chunk = chunk?;
            if buf.len() + chunk.len() > limit {
                return Err(StorageError::invalid_input(format!("body is larger than {limit} bytes")));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}

/// What [`Checked`] checks: each chunk as it passes, then the end.
trait StreamCheck: Send + 'static {
    fn chunk(&mut self, chunk: &Bytes) -> Result<()>;
    fn end(&mut self) -> Result<()>;
}

/// A stream that fails (once, then ends) as soon as its check does: the
/// adapter behind [`ByteStream::expect_len`] and [`ByteStream::verify`].
struct Checked<C> {
    inner: BoxStream<'static, Result<Bytes>>,
    check: C,
    finished: bool,
}

impl<C: StreamCheck + Unpin> Stream for Checked<C> {
    type Item = Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let item = match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let checked = match item {
            Some(Ok(chunk)) => self.check.chunk(&chunk).map(|()| Some(chunk)),
            Some(Err(e)) => Err(e),
            None => self.check.end().map(|()| None),
        };
        match checked {
            Ok(Some(chunk)) => Poll::Ready(Some(Ok(chunk))),
            Ok(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Err(e) => {
                self.finished = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

/// Exactly `expected` bytes.
struct LengthCheck {
    expected: u64,
    seen: u64,
}

impl StreamCheck for LengthCheck {
    fn chunk(&mut self, chunk: &Bytes) -> Result<()> {
        self.seen += chunk.len() as u64;
        if self.seen > self.expected {
            return Err(StorageError::integrity(format!("body is longer than the expected {} bytes", self.expected)));
        }
        Ok(())
    }
    fn end(&mut self) -> Result<()> {
        if self.seen == self.expected {
            Ok(())
        } else {
            Err(StorageError::integrity(format!("body ended after {} of {} bytes", self.seen, self.expected)))
        }
    }
}

/// Bytes whose CRC32C is `want`.
struct CrcCheck {
    crc: u32,
    want: u32,
    what: String,
}

impl StreamCheck for CrcCheck {
    fn chunk(&mut self, chunk: &Bytes) -> Result<()> {
        self.crc = crate::crc32c_append(self.crc, chunk);
        Ok(())
    }
    fn end(&mut self) -> Result<()> {
        if self.crc == self.want {
            return Ok(());
        }
        Err(StorageError::crc32c_mismatch(&self.what, self.crc, self.want))
    }
}

/// A checksum the source kept for a body, and who checks it.
#[derive(Clone, Debug)]
struct StoredChecksum {
    checksum: Checksum,
    checked_by_source: bool,
}

impl Stream for ByteStream {
    type Item = Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteStream")
            .field("size", &self.size)
            .field("replayable", &self.replay.is_some())
            .field("stored_checksum", &self.stored_checksum)
            .finish_non_exhaustive()
    }
}

impl From<Bytes> for ByteStream {
    fn from(b: Bytes) -> Self {
        ByteStream::from_bytes(b)
    }
}
impl From<Vec<u8>> for ByteStream {
    fn from(v: Vec<u8>) -> Self {
        ByteStream::from_bytes(v)
    }
}
impl From<&'static [u8]> for ByteStream {
    fn from(v: &'static [u8]) -> Self {
        ByteStream::from_bytes(Bytes::from_static(v))
    }
}

/// Bytes and CRC32C of what has passed through a [`ByteStream::tallied`]
/// stream so far. One writer (the stream) and readers that look after the
/// stream has been consumed (which orders them), so relaxed atomics
/// suffice: no lock per chunk.
#[derive(Clone, Debug, Default)]
pub struct Crc32cTally(Arc<TallyCounts>);

#[derive(Debug, Default)]
struct TallyCounts {
    bytes: std::sync::atomic::AtomicU64,
    crc: std::sync::atomic::AtomicU32,
}

impl Crc32cTally {
    fn add(&self, chunk: &[u8]) {
        use std::sync::atomic::Ordering::Relaxed;
        self.0.bytes.fetch_add(chunk.len() as u64, Relaxed);
        // Hardware CRC32C (SSE 4.2 / ARMv8 CRC), one pass over the chunk.
        self.0.crc.store(crate::crc32c_append(self.0.crc.load(Relaxed), chunk), Relaxed);
    }

    /// Bytes that have passed.
    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// CRC32C of the bytes that have passed.
    pub fn crc32c(&self) -> u32 {
        self.0.crc.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The CRC32C of what a provider sent of a body: the core's tally when the
/// body carries one (every chunk passed it before reaching the provider, so
/// no second pass), else folded here (the module used without its layers).
#[derive(Debug)]
pub enum SentCrc32c {
    /// The body's tally ([`ByteStream::crc32c_tally`]).
    Tally(Crc32cTally),
    /// Folded over the chunks [`SentCrc32c::add`] was given.
    Own(u32),
}

impl SentCrc32c {
    /// Start for `body`, before it is consumed.
    pub fn of(body: &ByteStream) -> Self {
        body.crc32c_tally().cloned().map_or(SentCrc32c::Own(0), SentCrc32c::Tally)
    }

    /// A chunk that was sent (folded only when there is no tally).
    pub fn add(&mut self, chunk: &[u8]) {
        if let SentCrc32c::Own(crc) = self {
            *crc = crate::crc32c_append(*crc, chunk);
        }
    }

    /// The CRC32C of the `sent` bytes, or why there is none: a tally that
    /// did not see exactly those bytes.
    pub fn of_sent(self, sent: u64) -> std::result::Result<u32, String> {
        match self {
            SentCrc32c::Own(crc) => Ok(crc),
            SentCrc32c::Tally(tally) if tally.bytes() == sent => Ok(tally.crc32c()),
            SentCrc32c::Tally(tally) => {
                Err(format!("the body's tally counted {} bytes where {sent} were sent", tally.bytes()))
            }
        }
    }
}

/// Send a body's parts with `send(index, part)`, up to `in_flight` at once,
/// and give back the answers in part order with the bytes sent: the loop
/// behind multipart uploads (S3 parts, Azure blocks). A part's request is
/// started as soon as the part is gathered (before the next one is), and
/// parts may finish in any order: a slow part holds only its own slot, so
/// `in_flight` requests stay busy. Memory: the parts in flight plus the one
/// being gathered. The first failure ends it (parts still in flight are
/// dropped).
pub async fn send_parts<S, F, Fut, T>(parts: S, in_flight: usize, mut send: F) -> Result<(u64, Vec<T>)>
where
    S: Stream<Item = Result<BodyPart>>,
    F: FnMut(usize, BodyPart) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    enum Next<P, A> {
        Part(usize, P),
        Answer(A),
        Done,
    }
    let in_flight = in_flight.max(1);
    let mut parts = std::pin::pin!(parts.enumerate());
    let mut sending = futures::stream::FuturesUnordered::new();
    let (mut more, mut total, mut done) = (true, 0u64, Vec::new());
    loop {
        let next = futures::future::poll_fn(|cx| {
            // Requests first, so the one just started gets going before the
            // next part is gathered.
            if let Poll::Ready(Some(answer)) = sending.poll_next_unpin(cx) {
                return Poll::Ready(Next::Answer(answer));
            }
            if more && sending.len() < in_flight {
                match parts.as_mut().poll_next(cx) {
                    Poll::Ready(Some((index, part))) => return Poll::Ready(Next::Part(index, part)),
                    Poll::Ready(None) => more = false,
                    Poll::Pending => {}
                }
            }
            if !more && sending.is_empty() { Poll::Ready(Next::Done) } else { Poll::Pending }
        })
        .await;
        match next {
            Next::Part(index, part) => {
                let part = part?;
                let len = part.len() as u64;
                let sent = send(index, part);
                sending.push(async move { sent.await.map(|answer| (index, len, answer)) });
            }
            Next::Answer(answer) => {
                let (index, len, answer) = answer?;
                total += len;
                done.push((index, answer));
            }
            Next::Done => break,
        }
    }
    done.sort_unstable_by_key(|(index, _)| *index);
    Ok((total, done.into_iter().map(|(_, answer)| answer).collect()))
}

/// A part of a body ([`ByteStream::into_chunked_parts`]): the body's chunks,
/// in order, not copied into one buffer. Cloning is cheap (reference counts),
/// so a part can be sent again from memory.
#[derive(Clone, Debug, Default)]
pub struct BodyPart {
    chunks: Vec<Bytes>,
    len: usize,
}

impl BodyPart {
    /// Bytes in the part.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the part has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks, in order (none of them empty).
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// The CRC32C of the part's bytes.
    pub fn crc32c(&self) -> u32 {
        self.crc32c_append(0)
    }

    /// The CRC32C of the bytes `crc` was computed over followed by this part's
    /// (a running checksum over consecutive parts).
    pub fn crc32c_append(&self, crc: u32) -> u32 {
        self.chunks.iter().fold(crc, |crc, c| crate::crc32c_append(crc, c))
    }

    /// One contiguous buffer (no copy when the part is a single chunk).
    pub fn into_bytes(self) -> Bytes {
        match <[Bytes; 1]>::try_from(self.chunks) {
            Ok([one]) => one,
            Err(chunks) => {
                let mut buf = BytesMut::with_capacity(self.len);
                chunks.iter().for_each(|c| buf.extend_from_slice(c));
                buf.freeze()
            }
        }
    }

    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }

    /// The part without its first `offset` bytes (to resend what a server
    /// did not keep); no copy.
    pub fn skip(&self, offset: usize) -> BodyPart {
        self.clone().split_off(offset.min(self.len))
    }

    /// Keep the first `at` bytes; return the rest (the chunk on the boundary is sliced, not copied).
    fn split_off(&mut self, at: usize) -> BodyPart {
        let mut rest = BodyPart::default();
        let mut kept = 0;
        let mut i = 0;
        while i < self.chunks.len() && kept + self.chunks[i].len() <= at {
            kept += self.chunks[i].len();
            i += 1;
        }
        let mut tail = self.chunks.split_off(i);
        if kept < at {
            let head = tail[0].split_to(at - kept);
            self.chunks.push(head);
        }
        tail.into_iter().for_each(|c| rest.push(c));
        self.len = at;
        rest
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn window_cuts_across_chunks_and_fails_when_the_body_is_short() {
        let chunks = || ByteStream::from_chunks(vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg")]);
        assert_eq!(&chunks().window(2, 3).collect_limited(100).await.unwrap()[..], b"cde");
        assert_eq!(&chunks().window(0, 7).collect_limited(100).await.unwrap()[..], b"abcdefg");
        assert_eq!(chunks().window(3, 0).collect_limited(100).await.unwrap().len(), 0);
        let short = chunks().window(5, 4).collect_limited(100).await.unwrap_err();
        assert_eq!(short.kind(), crate::ErrorKind::Integrity);
    }

    use super::*;

    fn chunks(sizes: &[usize]) -> ByteStream {
        let mut n = 0u8;
        let v: Vec<Bytes> = sizes
            .iter()
            .map(|&s| {
                let c: Vec<u8> = (0..s)
                    .map(|_| {
                        n = n.wrapping_add(1);
                        n
                    })
                    .collect();
                Bytes::from(c)
            })
            .collect();
        ByteStream::from_chunks(v)
    }

    #[tokio::test]
    async fn into_parts_regroups_exactly() {
        let parts: Vec<Bytes> = chunks(&[3, 10, 1, 0, 7]).into_parts(4).map(|r| r.unwrap()).collect().await;
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        assert_eq!(lens, vec![4, 4, 4, 4, 4, 1]);
        let empty: Vec<_> = ByteStream::empty().into_parts(4).collect().await;
        assert!(empty.is_empty());
    }

    #[tokio::test]
    async fn chunked_parts_keep_bytes_order_and_boundaries_without_copying() {
        let sizes = [3, 10, 1, 0, 7, 9];
        let whole: Vec<u8> = chunks(&sizes).collect_limited(1000).await.unwrap().to_vec();
        let parts: Vec<BodyPart> = chunks(&sizes).into_chunked_parts(4).map(|r| r.unwrap()).collect().await;
        let lens: Vec<usize> = parts.iter().map(BodyPart::len).collect();
        assert_eq!(lens, vec![4, 4, 4, 4, 4, 4, 4, 2]);
        assert!(parts.iter().all(|p| p.chunks().iter().all(|c| !c.is_empty())));
        let mut joined = Vec::new();
        for p in &parts {
            assert_eq!(p.crc32c(), crc32c::crc32c(&p.clone().into_bytes()));
            joined.extend_from_slice(&p.clone().into_bytes());
        }
        assert_eq!(joined, whole);
        // A chunk bigger than several parts is sliced, never copied.
        let big = Bytes::from(vec![7u8; 10]);
        let parts: Vec<BodyPart> =
            ByteStream::from_chunks(vec![big.clone()]).into_chunked_parts(4).map(|r| r.unwrap()).collect().await;
        assert_eq!(parts.iter().map(BodyPart::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let first = parts[0].chunks()[0].clone();
        assert_eq!(first.as_ptr(), big.as_ptr(), "the first part is a slice of the chunk");
        let empty: Vec<_> = ByteStream::empty().into_chunked_parts(4).collect().await;
        assert!(empty.is_empty());
    }

    #[tokio::test]
    async fn parts_marking_last_flag_only_the_last_and_read_one_chunk_ahead_at_most() {
        let marked = |sizes: &'static [usize], part: usize| async move {
            chunks(sizes)
                .into_chunked_parts_marking_last(part)
                .map(|r| r.unwrap())
                .map(|(p, l)| (p.len(), l))
                .collect::<Vec<_>>()
                .await
        };
        assert_eq!(marked(&[4, 4], 4).await, vec![(4, false), (4, true)]);
        // Empty chunks after an exact boundary do not hide the end.
        assert_eq!(marked(&[3, 1, 0, 0], 4).await, vec![(4, true)]);
        assert_eq!(marked(&[3, 10, 1], 4).await, vec![(4, false), (4, false), (4, false), (2, true)]);
        assert!(marked(&[], 4).await.is_empty());
        // The flag costs one chunk of look-ahead, not a part: the first part
        // is out while the source has given only the chunk after it.
        let given = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = given.clone();
        let source = futures::stream::iter(0..100u8).map(move |i| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Bytes::from(vec![i; 2]))
        });
        let mut parts = Box::pin(ByteStream::new(source, None).into_chunked_parts_marking_last(8));
        let (first, last) = parts.next().await.unwrap().unwrap();
        assert_eq!((first.len(), last), (8, false));
        assert_eq!(given.load(std::sync::atomic::Ordering::SeqCst), 5);
        // Plain parts never wait for the chunk after them (a slow source
        // must not hold back a full part), and marking only the first part
        // looks ahead for that one alone.
        let counted = |given: std::sync::Arc<std::sync::atomic::AtomicUsize>| {
            ByteStream::new(
                futures::stream::iter(0..100u8).map(move |i| {
                    given.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok(Bytes::from(vec![i; 2]))
                }),
                None,
            )
        };
        let given = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut plain = Box::pin(counted(given.clone()).into_chunked_parts(8));
        plain.next().await.unwrap().unwrap();
        assert_eq!(given.load(std::sync::atomic::Ordering::SeqCst), 4);
        let given = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut single = Box::pin(counted(given.clone()).into_chunked_parts_marking_if_single(8));
        assert!(!single.next().await.unwrap().unwrap().1);
        assert_eq!(given.load(std::sync::atomic::Ordering::SeqCst), 5);
        assert!(!single.next().await.unwrap().unwrap().1);
        assert_eq!(given.load(std::sync::atomic::Ordering::SeqCst), 8);
        let one: Vec<_> = chunks(&[3, 2]).into_chunked_parts_marking_if_single(8).map(|r| r.unwrap().1).collect().await;
        assert_eq!(one, vec![true]);
        // A failing body fails the stream instead of flagging a last part.
        let failing = ByteStream::new(
            futures::stream::iter(vec![Ok(Bytes::from_static(b"abcd")), Err(StorageError::transient("gone"))]),
            None,
        );
        let got: Vec<_> = failing.into_chunked_parts_marking_last(4).collect().await;
        assert!(got.len() == 1 && got[0].is_err());
    }

    #[test]
    fn a_part_skips_its_first_bytes_without_copying() {
        let a = Bytes::from_static(b"abc");
        let part = BodyPart { chunks: vec![a.clone(), Bytes::from_static(b"defg")], len: 7 };
        assert_eq!(&part.skip(2).into_bytes()[..], b"cdefg");
        assert_eq!(part.skip(2).chunks()[0].as_ptr(), a[2..].as_ptr());
        assert_eq!(&part.skip(3).into_bytes()[..], b"defg");
        assert!(part.skip(7).is_empty() && part.skip(9).is_empty());
        assert_eq!(part.len(), 7, "the part itself is unchanged");
    }

    #[tokio::test]
    async fn send_parts_keeps_its_slots_busy_behind_a_slow_part_and_answers_in_order() {
        // Part 0 finishes only once part 2 has started: with two slots, an
        // in-order window would wait for part 0 before starting part 2.
        let parts = ByteStream::from_chunks((0..4u8).map(|i| Bytes::from(vec![i; 3])).collect()).into_chunked_parts(3);
        let part2_started = std::sync::Arc::new(tokio::sync::Notify::new());
        let sent = send_parts(parts, 2, |index, part| {
            let part2_started = part2_started.clone();
            async move {
                match index {
                    0 => part2_started.notified().await,
                    2 => part2_started.notify_one(),
                    _ => {}
                }
                Ok(part.chunks()[0][0])
            }
        });
        let (total, answers) = tokio::time::timeout(std::time::Duration::from_secs(10), sent)
            .await
            .expect("part 2 never started while part 0 was in flight")
            .unwrap();
        assert_eq!((total, answers), (12, vec![0, 1, 2, 3]));
    }

    #[tokio::test]
    async fn send_parts_starts_each_request_before_gathering_the_next_part() {
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let gathered = events.clone();
        let parts = ByteStream::from_chunks((0..3u8).map(|i| Bytes::from(vec![i; 3])).collect())
            .into_chunked_parts(3)
            .inspect(move |part| {
                gathered.lock().unwrap().push(format!("gathered {}", part.as_ref().unwrap().chunks()[0][0]))
            });
        send_parts(parts, 2, |index, _part| {
            let events = events.clone();
            async move {
                events.lock().unwrap().push(format!("sent {index}"));
                Ok(())
            }
        })
        .await
        .unwrap();
        let events = events.lock().unwrap().clone();
        assert_eq!(events, ["gathered 0", "sent 0", "gathered 1", "sent 1", "gathered 2", "sent 2"]);
    }

    #[tokio::test]
    async fn the_sent_crc_comes_from_the_tally_when_there_is_one_else_from_the_chunks() {
        let whole = crate::crc32c_append(0, b"hello world");
        let sent = |body: ByteStream| async move {
            let mut crc = SentCrc32c::of(&body);
            let is_tally = matches!(crc, SentCrc32c::Tally(_));
            for chunk in body.collect_limited(64).await.unwrap().chunks(4) {
                crc.add(chunk);
            }
            (crc, is_tally)
        };
        let chunks = || vec![Bytes::from_static(b"hello "), Bytes::from_static(b"world")];

        // Without layers: our own fold over the chunks sent.
        let (crc, is_tally) = sent(ByteStream::from_chunks(chunks())).await;
        assert!(!is_tally);
        assert_eq!(crc.of_sent(11), Ok(whole));

        // With the core's tally: its CRC32C, once it has seen every byte sent.
        let (crc, is_tally) = sent(ByteStream::from_chunks(chunks()).tallied().0).await;
        assert!(is_tally);
        assert_eq!(crc.of_sent(11), Ok(whole));
        let (crc, _) = sent(ByteStream::from_chunks(chunks()).tallied().0).await;
        assert!(crc.of_sent(12).unwrap_err().contains("11 bytes where 12 were sent"));
    }

    #[tokio::test]
    async fn the_tally_travels_with_the_stream_and_counts_what_passed() {
        let (body, tally) = chunks(&[3, 10, 1]).tallied();
        let body = body.map_stream(|s| s).expect_len(14);
        let seen = body.crc32c_tally().expect("kept through map_stream and expect_len").clone();
        assert_eq!((seen.bytes(), seen.crc32c()), (0, 0));
        let whole = body.collect_limited(100).await.unwrap();
        assert_eq!(tally.bytes(), 14);
        assert_eq!(seen.crc32c(), crc32c::crc32c(&whole));
        assert!(chunks(&[1]).crc32c_tally().is_none());
    }

    #[tokio::test]
    async fn expect_len_flags_short_and_long_bodies() {
        let short = chunks(&[3, 3]).expect_len(7).collect_limited(100).await.unwrap_err();
        assert_eq!(short.kind(), crate::ErrorKind::Integrity);
        let long = chunks(&[3, 5]).expect_len(7).collect_limited(100).await.unwrap_err();
        assert_eq!(long.kind(), crate::ErrorKind::Integrity);
        let exact = chunks(&[3, 4]).expect_len(7).collect_limited(100).await.unwrap();
        assert_eq!(exact.len(), 7);
    }

    #[tokio::test]
    async fn replay_gives_the_same_bytes() {
        let s = ByteStream::from_bytes(&b"hello"[..]);
        let again = s.try_clone().unwrap();
        assert_eq!(s.collect_limited(10).await.unwrap(), again.collect_limited(10).await.unwrap());
    }

    #[tokio::test]
    async fn file_stream_is_replayable_and_sized() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![7u8; 300_000]).unwrap();
        let s = ByteStream::from_file(&p).await.unwrap();
        assert_eq!(s.size(), Some(300_000));
        let again = s.try_clone().unwrap();
        assert_eq!(s.collect_limited(1 << 20).await.unwrap().len(), 300_000);
        assert_eq!(again.collect_limited(1 << 20).await.unwrap().len(), 300_000);
    }

    #[tokio::test]
    async fn verify_passes_matching_bytes_and_ends_a_mismatch_with_integrity() {
        let body = || chunks(&[3, 10, 7]);
        let data = body().collect_limited(100).await.unwrap();
        let good = Checksum::crc32c(crc32c::crc32c(&data));
        let back = body().verify(&good, "o").unwrap().collect_limited(100).await.unwrap();
        assert_eq!(back, data);
        let wrong = Checksum::crc32c(crc32c::crc32c(&data) ^ 1);
        let e = body().verify(&wrong, "o").unwrap().collect_limited(100).await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Integrity);
        let md5 = Checksum { algorithm: "md5".into(), value: "00".into() };
        assert_eq!(body().verify(&md5, "o").unwrap_err().kind(), crate::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn collect_limited_refuses_big_bodies() {
        let e = chunks(&[10]).collect_limited(5).await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    }
}
