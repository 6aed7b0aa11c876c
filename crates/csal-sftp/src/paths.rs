//! Paths on the server: where an object id lives under the base folder,
//! and the names of in-flight uploads (used by the module, the writer, the
//! lister and the client).

use csal_core::ObjectMeta;
use russh_sftp::protocol::FileAttributes;

/// Folder (under `base_dir`) of in-flight uploads.
pub(crate) const TEMP_DIR: &str = ".csal-tmp";
/// Names starting with this are ours (temp files), never listed as objects.
pub(crate) const RESERVED_PREFIX: &str = ".csal";

/// `base/id` (ids are checked relative paths).
pub(crate) fn full_path(base: &str, id: &str) -> String {
    match base {
        "." => id.to_owned(),
        "/" => format!("/{id}"),
        b => format!("{b}/{id}"),
    }
}

/// The folder part of a path ("." for a bare name).
pub(crate) fn parent_of(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
        None => ".".to_owned(),
    }
}

pub(crate) fn meta_from_attrs(id: String, attrs: &FileAttributes) -> ObjectMeta {
    ObjectMeta { modified: attrs.modified().ok(), ..ObjectMeta::new(id, attrs.len()) }
}
