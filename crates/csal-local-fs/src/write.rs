//! Streaming writes: temp file → fsync → hard link into place (fails if the
//! name exists, so nothing is ever overwritten) → fsync the folder.
//!
//! A write that fails or is dropped half-way removes its temp file; no
//! partial object is ever visible under its final name.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use csal_core::{ByteStream, Result, StorageError, WriteMeta, WriteReceipt, object_id_from_hint};

use crate::paths::{TMP_DIR, resolve};

/// Removes the temp file unless the write completed (also on cancellation).
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub(crate) async fn write(root: &Path, fsync: bool, mut body: ByteStream, meta: &WriteMeta) -> Result<WriteReceipt> {
    let tmp_dir = root.join(TMP_DIR);
    tokio::fs::create_dir_all(&tmp_dir).await?;
    let tmp_path = tmp_dir.join(format!("{}.part", ulid::Ulid::new()));
    let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&tmp_path).await?;
    let guard = TempFile(Some(tmp_path.clone()));

    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        file.write_all(&chunk).await?;
        size += chunk.len() as u64;
    }
    file.flush().await?;
    if fsync {
        file.sync_all().await?;
    }
    drop(file);

    let object_id = link_into_place(root, &tmp_path, &meta.key_hint, fsync).await?;
    drop(guard); // removes the temp name; the data lives on under object_id
    Ok(WriteReceipt { object_id, size, checksum: None, etag: None, instance: None })
}

/// Give the temp file its final, unique name without replacing anything.
async fn link_into_place(root: &Path, tmp: &Path, key_hint: &str, fsync: bool) -> Result<String> {
    for _ in 0..8 {
        let object_id = object_id_from_hint(key_hint);
        let target = resolve(root, &object_id).await?;
        let parent = target.parent().expect("an object path has a parent");
        tokio::fs::create_dir_all(parent).await?;
        // Re-check after creating folders: a symlink could have been raced in.
        resolve(root, &object_id).await?;
        match tokio::fs::hard_link(tmp, &target).await {
            Ok(()) => {
                if fsync {
                    sync_dir(parent).await?;
                }
                return Ok(object_id);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // Filesystems without hard links: check, then rename (ids are unique anyway).
            Err(e) if matches!(e.kind(), std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied) => {
                if tokio::fs::try_exists(&target).await? {
                    continue;
                }
                tokio::fs::rename(tmp, &target).await?;
                if fsync {
                    sync_dir(parent).await?;
                }
                return Ok(object_id);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StorageError::already_exists("could not find a free object id after 8 attempts"))
}

async fn sync_dir(dir: &Path) -> Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(|e| StorageError::transient("directory sync task failed").with_source(e))?
        .map_err(StorageError::from)
}
