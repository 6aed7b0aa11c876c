//! The provider crates linked into the `csal` binary: the ONE place to list
//! them. A crate not named here is not linked and its provider type is
//! unknown to the binary (see csal_core::link_providers!).

csal_core::link_providers!(
    csal_local_fs,
    csal_memory,
    csal_db,
    csal_s3,
    csal_gcs,
    csal_azure_blob,
    csal_webdav,
    csal_swift,
    csal_sftp,
    csal_ftp,
    csal_dropbox,
    csal_onedrive,
    csal_gdrive,
    csal_pcloud,
    csal_mega,
    csal_box,
);
