//! Deterministic test data and streaming bodies.

use bytes::Bytes;
use csal_core::{ByteStream, Result, StorageError};
use futures::StreamExt;

/// `len` pseudo-random bytes from `seed` (xorshift; the same seed gives the same bytes).
pub fn pattern(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        let take = (len - out.len()).min(8);
        out.extend_from_slice(&bytes[..take]);
    }
    Bytes::from(out)
}

/// `data` cut into chunks of uneven sizes (1 byte to 64 KiB), replayable.
pub fn chunked(data: &Bytes, seed: u64) -> ByteStream {
    let mut chunks = Vec::new();
    let mut pos = 0;
    let mut state = seed | 1;
    while pos < data.len() {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let size = ((state >> 33) as usize % (64 * 1024)).max(1);
        let end = (pos + size).min(data.len());
        chunks.push(data.slice(pos..end));
        pos = end;
    }
    ByteStream::from_chunks(chunks)
}

/// A body of `len` pattern bytes generated on the fly in 100 KiB chunks:
/// unknown size, not replayable (the way a live camera stream looks).
pub fn generated(len: usize, seed: u64) -> ByteStream {
    const CHUNK: usize = 100 * 1024;
    let full = pattern(CHUNK.min(len.max(1)) * 2, seed);
    let stream = futures::stream::iter((0..len.div_ceil(CHUNK)).map(move |i| {
        let start = i * CHUNK;
        let n = CHUNK.min(len - start);
        // Vary chunks cheaply: rotate through a 2-chunk window.
        let off = (i * 7919) % CHUNK.min(full.len() / 2).max(1);
        Ok(full.slice(off..off + n))
    }));
    ByteStream::new(stream, None)
}

/// The bytes [`generated`] produces, as a CRC32C over the whole body.
pub async fn crc_of_generated(len: usize, seed: u64) -> Result<u32> {
    crc_of_stream(generated(len, seed)).await.map(|(crc, _)| crc)
}

/// CRC32C and length of a stream, consumed chunk by chunk.
pub async fn crc_of_stream(mut body: ByteStream) -> Result<(u32, u64)> {
    let mut crc = 0u32;
    let mut len = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        crc = crc32c::crc32c_append(crc, &chunk);
        len += chunk.len() as u64;
    }
    Ok((crc, len))
}

/// A body that yields `good` bytes and then fails (a camera stream that dies).
pub fn failing_after(good: usize) -> ByteStream {
    let data = pattern(good, 99);
    let stream =
        futures::stream::iter(vec![Ok(data), Err(StorageError::transient("source stream broke (conformance test)"))]);
    ByteStream::new(stream, None)
}
