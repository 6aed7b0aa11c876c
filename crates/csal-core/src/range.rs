//! Byte ranges for `read`.
//!
//! The seed's `(start, end)` is inclusive on both ends, as in HTTP `Range:
//! bytes=start-end`. We add open-ended (`start..`) and suffix (last `n`
//! bytes) ranges, which video players use to find an index at the end of a
//! file.
//!
//! Resolution against an object of `size` bytes ([`ByteRange::resolve`]):
//! - an end past the last byte is clamped to the last byte;
//! - a start at or past `size` is [`ErrorKind::RangeNotSatisfiable`];
//! - a suffix longer than the object returns the whole object;
//! - on an empty object every range is not satisfiable (as in HTTP);
//! - `start > end` or a zero-length suffix is [`ErrorKind::InvalidInput`].

use std::fmt;
use std::ops::Range;

use crate::error::{ErrorKind, Result, StorageError};

/// Which bytes of an object a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteRange {
    /// Bytes `start..=end` (the seed's tuple).
    Inclusive {
        /// First byte.
        start: u64,
        /// Last byte (included).
        end: u64,
    },
    /// Bytes from `start` to the end of the object.
    From {
        /// First byte.
        start: u64,
    },
    /// The last `len` bytes.
    Suffix {
        /// How many bytes.
        len: u64,
    },
}

impl ByteRange {
    /// The seed's inclusive `(start, end)`.
    pub fn inclusive(start: u64, end: u64) -> Self {
        ByteRange::Inclusive { start, end }
    }
    /// Bytes from `start` to the end.
    pub fn from(start: u64) -> Self {
        ByteRange::From { start }
    }
    /// The last `len` bytes.
    pub fn suffix(len: u64) -> Self {
        ByteRange::Suffix { len }
    }

    /// Check the range is well formed, independent of the object size.
    pub fn check(&self) -> Result<()> {
        match *self {
            ByteRange::Inclusive { start, end } if start > end => {
                Err(StorageError::invalid_input(format!("range start {start} is after its end {end}")))
            }
            ByteRange::Suffix { len: 0 } => Err(StorageError::invalid_input("suffix range of zero bytes")),
            _ => Ok(()),
        }
    }

    /// The half-open byte span this range selects in an object of `size` bytes.
    pub fn resolve(&self, size: u64) -> Result<Range<u64>> {
        self.check()?;
        let not_satisfiable = || {
            StorageError::new(
                ErrorKind::RangeNotSatisfiable,
                format!("range {self} starts past the end of a {size}-byte object"),
            )
        };
        match *self {
            ByteRange::Inclusive { start, end } => {
                if start >= size {
                    return Err(not_satisfiable());
                }
                Ok(start..end.saturating_add(1).min(size))
            }
            ByteRange::From { start } => {
                if start >= size {
                    return Err(not_satisfiable());
                }
                Ok(start..size)
            }
            ByteRange::Suffix { len } => {
                if size == 0 {
                    return Err(not_satisfiable());
                }
                Ok(size.saturating_sub(len)..size)
            }
        }
    }

    /// The value of an HTTP `Range` header for this range.
    pub fn to_http_header(&self) -> String {
        format!("bytes={}", self.http_spec())
    }

    fn http_spec(&self) -> String {
        match *self {
            ByteRange::Inclusive { start, end } => format!("{start}-{end}"),
            ByteRange::From { start } => format!("{start}-"),
            ByteRange::Suffix { len } => format!("-{len}"),
        }
    }

    /// Parse `START-END`, `START-` or `-LEN` (the CLI's `--range`).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim().trim_start_matches("bytes=");
        let bad = || StorageError::invalid_input(format!("range '{text}' is not START-END, START- or -LEN"));
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        let range = match (a.trim().is_empty(), b.trim().is_empty()) {
            (false, false) => ByteRange::inclusive(num(a)?, num(b)?),
            (false, true) => ByteRange::from(num(a)?),
            (true, false) => ByteRange::suffix(num(b)?),
            (true, true) => return Err(bad()),
        };
        range.check()?;
        Ok(range)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.http_spec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusive_end_past_eof_clamps() {
        assert_eq!(ByteRange::inclusive(5, 100).resolve(10).unwrap(), 5..10);
        assert_eq!(ByteRange::inclusive(0, 0).resolve(10).unwrap(), 0..1);
        assert_eq!(ByteRange::inclusive(9, 9).resolve(10).unwrap(), 9..10);
    }

    #[test]
    fn start_past_eof_is_not_satisfiable() {
        let e = ByteRange::inclusive(10, 20).resolve(10).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RangeNotSatisfiable);
        assert_eq!(ByteRange::from(10).resolve(10).unwrap_err().kind(), ErrorKind::RangeNotSatisfiable);
        assert_eq!(ByteRange::suffix(3).resolve(0).unwrap_err().kind(), ErrorKind::RangeNotSatisfiable);
    }

    #[test]
    fn suffix_longer_than_object_is_whole_object() {
        assert_eq!(ByteRange::suffix(3).resolve(10).unwrap(), 7..10);
        assert_eq!(ByteRange::suffix(30).resolve(10).unwrap(), 0..10);
    }

    #[test]
    fn malformed_ranges_are_invalid_input() {
        assert_eq!(ByteRange::inclusive(5, 4).resolve(10).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(ByteRange::suffix(0).check().unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(ByteRange::parse("x-1").unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(ByteRange::parse("-").unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn parse_and_header_round_trip() {
        for text in ["0-99", "100-", "-50"] {
            let r = ByteRange::parse(text).unwrap();
            assert_eq!(r.to_string(), text);
            assert_eq!(r.to_http_header(), format!("bytes={text}"));
        }
    }
}
