//! Listing: [`csal_core::list_tree`] over the folders under the root, so a
//! page costs O(page) (it reads only the folders on its way, in id order,
//! and resumes after the continuation token without visiting earlier
//! sub-trees) and memory is bounded by the page size. A folder read takes
//! names and types from `readdir` alone; only the objects a page returns
//! are `stat`ed. Folders are stamped with their mtime/ctime/inode, so the
//! page after this one continues from where this one stopped (the module's
//! [`ListCursors`]) instead of reading the folder again, as long as the
//! folder did not change. The whole page runs on one blocking thread.

use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use csal_core::{FolderSelection, FolderTree, ListCursors, ListPage, ListRequest, ObjectMeta, Result, StorageError};

use crate::paths::{RESERVED, resolve_blocking};

const DEFAULT_PAGE: usize = 1000;

/// A folder modified more recently than this is not stamped: on filesystems
/// with coarse timestamps a second change in the same tick would not show.
const SETTLED: Duration = Duration::from_secs(2);

pub(crate) async fn list(
    root: &std::path::Path,
    request: &ListRequest,
    cursors: &Arc<ListCursors>,
) -> Result<ListPage> {
    let mut tree = LocalTree { root: root.to_path_buf() };
    let (request, cursors) = (request.clone(), cursors.clone());
    tokio::task::spawn_blocking(move || {
        // Every await in the walk is a plain blocking call: run it right here.
        futures::executor::block_on(csal_core::list_tree(&mut tree, &request, DEFAULT_PAGE, Some(&cursors)))
    })
    .await
    .map_err(|e| StorageError::transient("listing task failed").with_source(e))?
}

struct LocalTree {
    root: PathBuf,
}

fn io_error(e: std::io::Error) -> StorageError {
    let e = StorageError::from(e);
    StorageError::new(e.kind(), format!("reading a folder while listing: {}", e.message())).with_source(e)
}

#[csal_core::async_trait]
impl FolderTree for LocalTree {
    async fn read_folder(&mut self, folder: &str, into: &mut FolderSelection) -> Result<bool> {
        // Also refuses a folder that is (or passes through) a symlink.
        let dir = if folder.is_empty() { self.root.clone() } else { resolve_blocking(&self.root, folder)? };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
                return Ok(false);
            }
            Err(e) => return Err(io_error(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_error)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(RESERVED) {
                continue;
            }
            // From readdir's d_type where the filesystem gives it: no stat.
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(e)),
            };
            if kind.is_dir() {
                into.offer_folder(name);
            } else if kind.is_file() {
                into.offer_file(name, None);
            }
        }
        Ok(true)
    }

    async fn folder_stamp(&mut self, folder: &str) -> Result<Option<u64>> {
        let dir = if folder.is_empty() { self.root.clone() } else { resolve_blocking(&self.root, folder)? };
        let Ok(meta) = std::fs::symlink_metadata(&dir) else { return Ok(None) };
        let settled = meta.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()) > Some(SETTLED);
        if !settled {
            return Ok(None);
        }
        let mut hash = std::collections::hash_map::DefaultHasher::new();
        (meta.dev(), meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.ctime(), meta.ctime_nsec()).hash(&mut hash);
        Ok(Some(hash.finish()))
    }

    async fn file_meta(&mut self, object_id: &str) -> Result<Option<ObjectMeta>> {
        match std::fs::symlink_metadata(self.root.join(object_id)) {
            Ok(m) if m.is_file() => {
                Ok(Some(ObjectMeta { modified: m.modified().ok(), ..ObjectMeta::new("", m.len()) }))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }
}
