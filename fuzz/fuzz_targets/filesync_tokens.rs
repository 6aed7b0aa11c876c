//! Continuation tokens of the file-sync providers (OneDrive, Drive, Box):
//! callers hand them back, so they are hostile input. Decoding never
//! panics, and a decoded token re-encodes to one that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    csal_onedrive::fuzzing::continuation_token(token);
    csal_gdrive::fuzzing::continuation_token(token);
    csal_box::fuzzing::continuation_token(token);
});
