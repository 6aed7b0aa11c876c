//! An Azure Blob (or S3-style XML) listing answer: parsed without panic, and
//! every object it yields has a valid id.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    csal_azure_blob::fuzzing::list_blobs(data);
});
