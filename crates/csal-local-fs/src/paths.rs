//! Mapping object ids to paths under the root, refusing anything that could
//! escape it: syntax first (`check_object_id`), then symlinks on disk.

use std::path::{Path, PathBuf};

use csal_core::{Result, StorageError, check_object_id};

/// Name of the folder (inside the root) that holds in-progress writes.
pub(crate) const TMP_DIR: &str = ".csal-tmp";
/// Names starting with this are ours (temp files), never objects.
pub(crate) const RESERVED: &str = ".csal";

/// The path of `object_id` under `root`, after checking that the id is a
/// clean relative path, is not in our reserved folder, and that no existing
/// component on the way is a symlink.
pub(crate) async fn resolve(root: &Path, object_id: &str) -> Result<PathBuf> {
    let (root, object_id) = (root.to_path_buf(), object_id.to_owned());
    tokio::task::spawn_blocking(move || resolve_blocking(&root, &object_id))
        .await
        .map_err(|e| StorageError::transient("path check task failed").with_source(e))?
}

/// [`resolve`] on the calling thread (for code already on a blocking thread).
pub(crate) fn resolve_blocking(root: &Path, object_id: &str) -> Result<PathBuf> {
    check_object_id(object_id)?;
    if object_id.split('/').any(|seg| seg.starts_with(RESERVED)) {
        return Err(StorageError::invalid_input(format!("object id {object_id:?} uses a reserved name")));
    }
    let mut path = root.to_path_buf();
    for segment in object_id.split('/') {
        path.push(segment);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(StorageError::invalid_input(format!(
                    "object id {object_id:?} passes through a symlink; refused"
                )));
            }
            Ok(_) => {}
            // The rest does not exist yet: nothing further can be a symlink.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(root.join(object_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn symlinks_inside_the_root_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let e = resolve(root.path(), "link/secret.txt").await.unwrap_err();
        assert_eq!(e.kind(), csal_core::ErrorKind::InvalidInput);
        assert_eq!(resolve(root.path(), ".csal-tmp/x").await.unwrap_err().kind(), csal_core::ErrorKind::InvalidInput);
        assert_eq!(resolve(root.path(), "a/b").await.unwrap(), root.path().join("a/b"));
    }
}
