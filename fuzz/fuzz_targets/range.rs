//! Range parsing (`--range`, HTTP-style specs) and resolution against any
//! object size: never panics; a resolved span lies inside the object; a
//! range printed as a header parses back to itself.
#![no_main]

use csal_core::ByteRange;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (size, text) = match data.split_first_chunk::<8>() {
        Some((size, rest)) => (u64::from_le_bytes(*size), rest),
        None => (0, data),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let Ok(range) = ByteRange::parse(text) else { return };
    assert_eq!(ByteRange::parse(&range.to_http_header()).ok(), Some(range), "{text:?}");
    if let Ok(span) = range.resolve(size) {
        assert!(span.start < span.end && span.end <= size, "{range} of {size}: {span:?}");
    }
});
