//! Paths on the server: where an object id lives under the root folder,
//! and the names of in-flight uploads (used by the module, the writer and
//! the lister).

/// Name prefix of in-flight uploads (hidden, never listed).
pub(crate) const TEMP_PREFIX: &str = ".csal-tmp-";

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
