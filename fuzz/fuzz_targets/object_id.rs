//! `check_object_id` on any text: never panics, and what it accepts is a
//! clean relative path (no root, no `..`, no empty segment, no backslash,
//! no control character).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(id) = std::str::from_utf8(data) else { return };
    if csal_core::check_object_id(id).is_ok() {
        assert!(!id.is_empty() && !id.starts_with('/') && !id.ends_with('/'), "{id:?}");
        assert!(!id.contains('\\') && !id.chars().any(char::is_control), "{id:?}");
        for segment in id.split('/') {
            assert!(!segment.is_empty() && segment != "." && segment != "..", "{id:?}");
        }
    }
});
