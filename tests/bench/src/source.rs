//! The generated body (never held whole in memory) and the digest every
//! download is checked against.

use bytes::{Bytes, BytesMut};

/// Size of one chunk handed to a client.
pub const CHUNK: usize = 256 * 1024;
/// Chunk `i` starts at offset `(i * STRIDE) % PERIOD` of the base block, so
/// neighbouring chunks differ and a reordered or repeated part changes the CRC.
const PERIOD: usize = 64 * 1024;
const STRIDE: usize = 4099;

/// Pseudo-random bytes (a multiplicative hash), so nothing can compress or
/// dedupe them; made once per process.
fn base_block() -> Bytes {
    static BLOCK: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    BLOCK
        .get_or_init(|| {
            (0..(CHUNK + PERIOD) as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect::<Vec<u8>>()
                .into()
        })
        .clone()
}

/// `size` bytes, each chunk a fresh buffer as a file or socket reader would
/// hand out (zero-copy slices of one shared block would let a client that
/// keeps chunks instead of copying them look as if it held no memory).
pub fn chunks(size: u64) -> impl Iterator<Item = Bytes> + Send + 'static {
    let base = base_block();
    (0..size.div_ceil(CHUNK as u64)).map(move |i| {
        let len = (size - i * CHUNK as u64).min(CHUNK as u64) as usize;
        let start = (i as usize).wrapping_mul(STRIDE) % PERIOD;
        Bytes::copy_from_slice(&base[start..start + len])
    })
}

/// The same bytes regrouped into parts of `part_size` (a multiple of
/// [`CHUNK`]; the last part may be shorter), built one at a time.
pub fn parts(size: u64, part_size: usize) -> impl Iterator<Item = Bytes> + Send + 'static {
    assert!(part_size.is_multiple_of(CHUNK), "part size must be a multiple of {CHUNK}");
    let mut chunks = chunks(size).peekable();
    std::iter::from_fn(move || {
        chunks.peek()?;
        let mut part = BytesMut::with_capacity(part_size);
        for chunk in chunks.by_ref().take(part_size / CHUNK) {
            part.extend_from_slice(&chunk);
        }
        Some(part.freeze())
    })
}

/// Byte count and CRC32C of a body.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Digest {
    pub bytes: u64,
    pub crc32c: u32,
}

impl Digest {
    pub fn add(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        self.crc32c = crc32c::crc32c_append(self.crc32c, data);
    }

    /// The digest of the generated body of `size` bytes.
    pub fn of_source(size: u64) -> Digest {
        let mut d = Digest::default();
        chunks(size).for_each(|c| d.add(&c));
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_carry_the_same_bytes_as_chunks() {
        let size = 3 * CHUNK as u64 * 2 + 12_345;
        let mut from_parts = Digest::default();
        let parts: Vec<Bytes> = parts(size, 2 * CHUNK).collect();
        parts.iter().for_each(|p| from_parts.add(p));
        assert_eq!(from_parts, Digest::of_source(size));
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[3].len(), 12_345);
    }

    #[test]
    fn swapped_chunks_change_the_digest() {
        let c: Vec<Bytes> = chunks(2 * CHUNK as u64).collect();
        let mut swapped = Digest::default();
        swapped.add(&c[1]);
        swapped.add(&c[0]);
        assert_ne!(swapped, Digest::of_source(2 * CHUNK as u64));
    }
}
