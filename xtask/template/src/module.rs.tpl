//! The `{{name}}` module. As generated it keeps objects as files under a
//! folder, which is enough to pass the conformance suite; replace these
//! calls with the service's own (see docs/writing-a-provider.md).
//!
//! Object ids reach this module checked by the router's layers (no `..`,
//! no absolute paths): providers trust them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, ConfigSpec, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta,
    Result, StorageError, StorageModule, WriteMeta, WriteReceipt, object_id_from_hint,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::config::{{Type}}Config;

/// Folder for bodies being written (never an object id: ids have no
/// segment starting with a dot).
const TMP: &str = ".tmp";
const PAGE: usize = 1000;

/// A `{{name}}` instance.
pub struct {{Type}}Module {
    root: PathBuf,
}

pub(crate) fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config = {{Type}}Config::parse(config)?;
    std::fs::create_dir_all(&config.root)?;
    Ok(Arc::new({{Type}}Module { root: config.root }))
}

impl {{Type}}Module {
    /// The file of an object, if it is one.
    async fn file(&self, id: &str) -> Result<(PathBuf, std::fs::Metadata)> {
        let path = self.root.join(id);
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok((path, m)),
            Ok(_) => Err(StorageError::not_found(format!("no object '{id}'"))),
            Err(e) => Err(StorageError::from(e)),
        }
    }
}

#[async_trait]
impl StorageModule for {{Type}}Module {
    fn capabilities(&self) -> Capabilities {
        // A hard link never replaces a file: writes cannot overwrite.
        Capabilities::BASIC.with_conditional_create(true)
    }

    async fn validate(&self) -> Result<()> {
        tokio::fs::metadata(&self.root).await.map(drop).map_err(StorageError::from)
    }

    /// Body to a temporary file, flushed, then linked to its new id.
    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        let object_id = object_id_from_hint(&meta.key_hint);
        let target = self.root.join(&object_id);
        let tmp_dir = self.root.join(TMP);
        tokio::fs::create_dir_all(&tmp_dir).await?;
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        let tmp = tmp_dir.join(ulid::Ulid::new().to_string());
        let written = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            let mut body = body;
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk?;
                file.write_all(&chunk).await?;
                size += chunk.len() as u64;
            }
            file.sync_all().await?;
            tokio::fs::hard_link(&tmp, &target).await?;
            Ok::<u64, StorageError>(size)
        }
        .await;
        let _ = tokio::fs::remove_file(&tmp).await;
        Ok(WriteReceipt { object_id, size: written?, checksum: None, etag: None, instance: None })
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let (path, meta) = self.file(object_id).await?;
        let span = match range {
            Some(r) => r.resolve(meta.len())?,
            None => 0..meta.len(),
        };
        let file = tokio::fs::File::open(path).await?;
        ByteStream::from_file_range(file, span.start, span.end - span.start).await
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        match self.file(object_id).await {
            Ok((path, _)) => match tokio::fs::remove_file(path).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            },
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every id under the folder, sorted; the token is the last id of the
    /// previous page.
    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        let folder = request.path.trim_matches('/');
        if !folder.is_empty() {
            csal_core::check_object_id(folder)?;
        }
        let (root, start) = (self.root.clone(), self.root.join(folder));
        let mut all = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            collect(&root, &start, &mut found);
            found
        })
        .await
        .map_err(|e| StorageError::transient("listing failed").with_source(e))?;
        all.sort_by(|a, b| a.object_id.cmp(&b.object_id));
        let (prefix, limit) = (request.id_prefix(), request.limit.unwrap_or(PAGE));
        let after = request.continuation.clone().unwrap_or_default();
        let mut page = ListPage::default();
        for meta in all.into_iter().filter(|m| m.object_id.starts_with(&prefix) && m.object_id > after) {
            if page.objects.len() == limit {
                page.next_page = page.objects.last().map(|o| o.object_id.clone());
                break;
            }
            if request.matches_time(&meta) {
                page.objects.push(meta);
            }
        }
        Ok(page)
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        let (_, meta) = self.file(object_id).await?;
        Ok(ObjectMeta { modified: meta.modified().ok(), ..ObjectMeta::new(object_id, meta.len()) })
    }

    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        match self.validate().await {
            Ok(()) => HealthReport::ok(started.elapsed()),
            Err(e) => HealthReport::offline(&e),
        }
    }
}

/// The objects below `dir` (skipping bodies being written).
fn collect(root: &Path, dir: &Path, found: &mut Vec<ObjectMeta>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() && entry.file_name() != TMP {
            collect(root, &path, found);
        } else if meta.is_file() {
            let Some(id) = path.strip_prefix(root).ok().and_then(|p| p.to_str()) else { continue };
            found.push(ObjectMeta { modified: meta.modified().ok(), ..ObjectMeta::new(id, meta.len()) });
        }
    }
}
