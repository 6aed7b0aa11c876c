use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use csal_core::{
    ByteRange, ByteStream, Capabilities, HealthReport, InstanceContext, ListCursors, ListPage, ListRequest, ObjectMeta,
    Result, StorageError, StorageModule, WriteMeta, WriteReceipt,
};

use crate::config::{LocalFsConfig, Modes};
use crate::paths::{TMP_DIR, resolve};
use crate::write::{create_folders, on_blocking_thread, sweep_stale_temp};

/// Files under a root directory.
pub struct LocalFsModule {
    root: PathBuf,
    config: LocalFsConfig,
    modes: Modes,
    /// Where recent listing pages stopped (see `csal_core::tree_list`).
    cursors: Arc<ListCursors>,
}

pub(crate) fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: LocalFsConfig = csal_core::parse_config("local_fs", config)?;
    Ok(Arc::new(LocalFsModule::new(config)?))
}

impl LocalFsModule {
    /// Opens (and if allowed creates) the root. Local, quick: no network.
    pub fn new(config: LocalFsConfig) -> Result<Self> {
        if !config.root.is_absolute() {
            return Err(StorageError::invalid_config(format!(
                "field 'root': {:?} must be an absolute path",
                config.root
            )));
        }
        let modes = config.modes()?;
        if config.create_root {
            std::fs::create_dir_all(&config.root)
                .map_err(|e| StorageError::from(e).with_operation(csal_core::Operation::Construct))?;
        }
        let root = std::fs::canonicalize(&config.root).map_err(|e| {
            StorageError::invalid_config(format!("field 'root': {:?} is not usable", config.root)).with_source(e)
        })?;
        if !root.is_dir() {
            return Err(StorageError::invalid_config(format!("field 'root': {root:?} is not a directory")));
        }
        // Leftovers of writes that died with an earlier process (local and quick).
        if let Err(e) = sweep_stale_temp(&root) {
            tracing::warn!(root = %root.display(), error = %e, "could not sweep old temp files");
        }
        Ok(LocalFsModule { root, config, modes, cursors: Arc::default() })
    }

    /// The folder the objects live under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Write, fsync and remove a probe file: proves the root is writable.
    async fn probe(&self) -> Result<()> {
        let (root, mode) = (self.root.clone(), self.modes.dir);
        on_blocking_thread(move || create_folders(&root, TMP_DIR, mode)).await?;
        let dir = self.root.join(TMP_DIR);
        let probe = dir.join(format!("probe-{}", ulid::Ulid::new()));
        let result = async {
            let mut f = tokio::fs::File::create(&probe).await?;
            f.write_all(b"csal health probe").await?;
            f.sync_all().await?;
            Ok::<_, std::io::Error>(())
        }
        .await;
        let _ = tokio::fs::remove_file(&probe).await;
        result.map_err(|e| StorageError::from(e).with_source(std::io::Error::other("root is not writable")))
    }

    async fn file_meta(&self, object_id: &str) -> Result<(PathBuf, std::fs::Metadata)> {
        let path = resolve(&self.root, object_id).await?;
        let not_found = || StorageError::not_found(format!("no object '{object_id}'"));
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok((path, m)),
            Ok(_) => Err(not_found()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove folders left empty by a delete, up to (not including) the root.
    async fn prune_empty_parents(&self, path: &Path) {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root || !d.starts_with(&self.root) || tokio::fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
        }
    }
}

#[async_trait]
impl StorageModule for LocalFsModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::BASIC.with_conditional_create(true).with_verified_reads(true).with_server_side_copy(true)
    }

    async fn validate(&self) -> Result<()> {
        self.probe().await
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        crate::write::write(&self.root, self.config.fsync, self.modes, body, &meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let (path, meta) = self.file_meta(object_id).await?;
        let size = meta.len();
        let span = match range {
            Some(r) => r.resolve(size)?,
            None => 0..size,
        };
        let file = tokio::fs::File::open(&path).await?.into_std().await;
        let stored = if range.is_none() { crate::checksum::load(&file) } else { None };
        let stored = stored.map(|c| (c, format!("object '{object_id}'")));
        Ok(crate::read::stream_file(file, span.start, span.end - span.start, stored))
    }

    async fn copy(&self, object_id: &str, meta: WriteMeta) -> Result<WriteReceipt> {
        let (path, _) = self.file_meta(object_id).await?;
        crate::write::copy(&self.root, self.config.fsync, self.modes, &path, &meta).await
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        let path = resolve(&self.root, object_id).await?;
        match tokio::fs::symlink_metadata(&path).await {
            Ok(m) if m.is_file() => {}
            // A folder is not an object; nothing to delete.
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        self.prune_empty_parents(&path).await;
        Ok(())
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        crate::list::list(&self.root, request, &self.cursors).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        let (path, meta) = self.file_meta(object_id).await?;
        let checksum = tokio::fs::File::open(&path).await.ok().and_then(|f| crate::checksum::load(&f));
        Ok(ObjectMeta { modified: meta.modified().ok(), checksum, ..ObjectMeta::new(object_id, meta.len()) })
    }

    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        if let Err(e) = self.probe().await {
            return HealthReport::offline(&e);
        }
        let latency = started.elapsed();
        let root = self.root.clone();
        let swept = on_blocking_thread(move || sweep_stale_temp(&root)).await;
        let free = fs4::available_space(&self.root).ok();
        let report = match free {
            Some(bytes) if bytes < self.config.min_free_bytes() => HealthReport::degraded(
                Some(latency),
                format!("only {} MiB free (below {} MiB)", bytes / (1024 * 1024), self.config.min_free_mb),
            ),
            _ => HealthReport::ok(latency),
        };
        let report = match free {
            // What CSAL may still write: the disk's free space less the reserve.
            Some(bytes) => report
                .with_detail(HealthReport::FREE_BYTES, bytes.saturating_sub(self.config.min_free_bytes()))
                .with_detail("disk_free_bytes", bytes),
            None => report,
        };
        let report = match swept {
            Ok(n) => report.with_detail("stale_temp_files_removed", n),
            Err(e) => {
                tracing::warn!(root = %self.root.display(), error = %e, "could not sweep old temp files");
                report
            }
        };
        report.with_detail("root", self.root.display().to_string())
    }
}
