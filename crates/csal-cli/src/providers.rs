//! The provider crates linked into the `csal` binary: the ONE place to list
//! them. A crate not named here is not linked and its provider type is
//! unknown to the binary (see csal_core::link_providers!).

// csal-swift is left out for now: built alone with csal-cli it does not
// compile (its reqwest dependency lacks the `json` and `query` features it
// uses; they only arrive through feature unification in a workspace build).
csal_core::link_providers!(
    csal_azure_blob,
    csal_db,
    csal_ftp,
    csal_gcs,
    csal_local_fs,
    csal_memory,
    csal_s3,
    csal_sftp,
    csal_webdav,
);
