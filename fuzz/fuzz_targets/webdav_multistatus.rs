//! A WebDAV server's PROPFIND answer (XML, hostile): parsed without panic,
//! and no entry escapes the configured collection.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        csal_webdav::fuzzing::multistatus(text);
    }
});
