//! Paths on the server: where an object id lives under the root folder,
//! and the names of in-flight uploads (used by the module, the writer and
//! the lister).

/// Folder (under the base folder) of in-flight uploads.
pub(crate) const TEMP_DIR: &str = ".csal-tmp";
/// Names starting with this are ours (temp files), never listed as objects.
pub(crate) const RESERVED_PREFIX: &str = ".csal";

/// `root/id` (root is absolute, ids are checked relative paths).
pub(crate) fn full_path(root: &str, id: &str) -> String {
    if root == "/" { format!("/{id}") } else { format!("{root}/{id}") }
}

pub(crate) fn parent_of(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => path[..i].to_owned(),
    }
}
