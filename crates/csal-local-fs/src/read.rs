//! Reads: the file is read in batches of a few chunks on a blocking
//! thread, the next batch while the consumer takes the current one (double
//! buffering). Compared with `tokio::fs::File` there is one thread hop per
//! batch instead of per chunk and no copy through its internal buffer; a
//! full read's CRC32C check runs on that thread beside the read, overlapping
//! the consumer's work; and no thread waits on a slow consumer (a playback
//! to a slow client holds none of the blocking pool between batches).
//! A batch's buffers are those of the batch before last when the consumer
//! has let go of them: fresh 512 KiB allocations per read cost page faults
//! and zeroing in the kernel (a third of a cached 1 GiB read's time).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use csal_core::{ByteStream, Checksum, Result, StorageError};
use tokio::task::JoinHandle;

/// Bytes per read call.
const CHUNK: usize = 512 * 1024;

/// Chunks per batch: a read holds at most two batches (the one being
/// consumed and the one being read), 4 MiB.
const CHUNKS_PER_BATCH: usize = 4;

/// `len` bytes of `file` from `offset`. With `stored` (a full read of an
/// object whose CRC32C is kept, and the object's name for the error), the
/// bytes are checked against it here and the stream ends with `Integrity`
/// on a mismatch; the stream says so, so the core layer does not hash them
/// again. A file that ends early ends the stream with `Integrity` too (the
/// core's length check).
pub(crate) fn stream_file(
    file: std::fs::File,
    offset: u64,
    len: u64,
    stored: Option<(Checksum, String)>,
) -> ByteStream {
    let stored = stored.and_then(|(c, what)| c.crc32c_value().map(|want| (c, want, what)));
    let reader = Reader {
        file: Arc::new(file),
        at: offset,
        end: offset + len,
        crc: 0,
        check: stored.as_ref().map(|(_, want, what)| (*want, what.clone())),
        ready: VecDeque::new(),
        next: None,
        lent: Vec::new(),
    };
    let chunks = futures::stream::unfold(Some(reader), |state| async move {
        let mut reader = state?;
        match reader.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(reader))),
            Err(e) => Some((Err(e), None)),
            Ok(None) => match reader.check {
                Some((want, ref what)) if want != reader.crc => {
                    Some((Err(StorageError::crc32c_mismatch(what, reader.crc, want)), None))
                }
                _ => None,
            },
        }
    });
    let body = ByteStream::new(chunks, Some(len)).expect_len(len);
    match stored {
        Some((checksum, _, _)) => body.with_checked_stored_checksum(checksum),
        None => body,
    }
}

/// What one batch read gives back: its chunks (none at the end of the file)
/// and the running CRC32C.
type Batch = std::io::Result<(Vec<Bytes>, u32)>;

struct Reader {
    file: Arc<std::fs::File>,
    /// Where the next batch starts.
    at: u64,
    end: u64,
    /// CRC32C of the bytes read so far (when there is a `check`).
    crc: u32,
    /// The stored CRC32C to check at the end, and the object's name for the error.
    check: Option<(u32, String)>,
    ready: VecDeque<Bytes>,
    next: Option<JoinHandle<Batch>>,
    /// The chunks of the batch being handed out: once it is used up and
    /// dropped, their buffers carry the batch after next.
    lent: Vec<Bytes>,
}

impl Reader {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        if self.ready.is_empty() {
            let batch = match self.next.take() {
                Some(pending) => pending,
                None if self.at < self.end => self.read_batch(Vec::new()),
                None => return Ok(None),
            };
            let (chunks, crc) =
                batch.await.map_err(|e| StorageError::transient("filesystem task failed").with_source(e))??;
            if chunks.is_empty() {
                self.at = self.end; // ended early: the length check reports it
            }
            self.crc = crc;
            self.at += chunks.iter().map(|c| c.len() as u64).sum::<u64>();
            let used_up = std::mem::replace(&mut self.lent, chunks.clone());
            self.ready.extend(chunks);
            // Read the next batch while this one is consumed.
            if self.at < self.end {
                self.next = Some(self.read_batch(reclaim(used_up)));
            }
        }
        Ok(self.ready.pop_front())
    }

    /// Reads the next batch into `buffers` (emptied ones to reuse; new ones when short).
    fn read_batch(&self, mut buffers: Vec<Vec<u8>>) -> JoinHandle<Batch> {
        let (file, mut at, end, mut crc, hashing) =
            (self.file.clone(), self.at, self.end, self.crc, self.check.is_some());
        tokio::task::spawn_blocking(move || {
            let mut chunks = Vec::with_capacity(CHUNKS_PER_BATCH);
            while chunks.len() < CHUNKS_PER_BATCH && at < end {
                let want = CHUNK.min((end - at) as usize);
                let mut buf = buffers.pop().unwrap_or_default();
                buf.reserve_exact(want);
                let read = pread_into_spare(&file, &mut buf, at)?;
                if read == 0 {
                    break;
                }
                // A reused buffer may hold more than is left of the range.
                buf.truncate(want);
                at += buf.len() as u64;
                if hashing {
                    crc = csal_core::crc32c_append(crc, &buf);
                }
                chunks.push(Bytes::from(buf));
            }
            Ok((chunks, crc))
        })
    }
}

/// The buffers of `chunks` that nobody else holds any more, emptied.
fn reclaim(chunks: Vec<Bytes>) -> Vec<Vec<u8>> {
    let emptied = |mut buf: bytes::BytesMut| {
        buf.clear(); // so that taking the Vec back copies nothing
        Vec::from(buf)
    };
    chunks.into_iter().filter_map(|c| c.try_into_mut().ok()).map(emptied).collect()
}

/// `pread` into `buf`'s spare capacity (no zeroing first), retried on EINTR.
fn pread_into_spare(file: &std::fs::File, buf: &mut Vec<u8>, offset: u64) -> std::io::Result<usize> {
    loop {
        match rustix::io::pread(file, rustix::buffer::spare_capacity(buf), offset) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csal_core::ErrorKind;
    use std::io::Write;

    fn file_of(data: &[u8]) -> (tempfile::NamedTempFile, std::fs::File) {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(data).unwrap();
        let file = std::fs::File::open(tmp.path()).unwrap();
        (tmp, file)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn several_batches_and_a_range_read_back_exactly() {
        let data = pattern(5 * CHUNK * CHUNKS_PER_BATCH / 2 + 17);
        let (_tmp, file) = file_of(&data);
        let stored = Some((Checksum::crc32c(crc32c::crc32c(&data)), "object 'x'".to_owned()));
        let body = stream_file(file.try_clone().unwrap(), 0, data.len() as u64, stored);
        assert!(body.stored_checksum_is_checked());
        assert_eq!(body.collect_limited(1 << 30).await.unwrap(), data);
        let body = stream_file(file, 1000, 3 * CHUNK as u64, None);
        assert!(!body.stored_checksum_is_checked());
        assert_eq!(body.collect_limited(1 << 30).await.unwrap(), data[1000..1000 + 3 * CHUNK]);
    }

    #[tokio::test]
    async fn chunks_a_consumer_keeps_are_never_reused() {
        use futures::StreamExt;
        let data = pattern(7 * CHUNK * CHUNKS_PER_BATCH / 2 + 99);
        let (_tmp, file) = file_of(&data);
        let kept: Vec<Bytes> =
            stream_file(file, 0, data.len() as u64, None).map(|chunk| chunk.unwrap()).collect().await;
        assert_eq!(kept.concat(), data);
    }

    #[test]
    fn only_buffers_nobody_holds_are_reclaimed_and_they_keep_their_capacity() {
        let held = Bytes::from(vec![1u8; CHUNK]);
        let still_read = held.slice(10..20);
        let free = Bytes::from(vec![2u8; CHUNK]);
        let buffers = reclaim(vec![held, free]);
        assert_eq!(buffers.len(), 1);
        assert!(buffers[0].is_empty());
        assert!(buffers[0].capacity() >= CHUNK);
        assert_eq!(still_read, [1u8; 10][..]);
    }

    #[tokio::test]
    async fn bytes_that_do_not_match_the_stored_crc32c_end_with_integrity() {
        let data = pattern(3 * CHUNK);
        let (_tmp, file) = file_of(&data);
        let wrong = Checksum::crc32c(crc32c::crc32c(&data) ^ 1);
        let body = stream_file(file, 0, data.len() as u64, Some((wrong, "object 'x'".to_owned())));
        let err = body.collect_limited(1 << 30).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert!(err.to_string().contains("object 'x'"), "{err}");
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_length_ends_with_integrity() {
        let data = pattern(CHUNK + 5);
        let (_tmp, file) = file_of(&data);
        let body = stream_file(file, 0, data.len() as u64 + 100, None);
        let err = body.collect_limited(1 << 30).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
    }
}
