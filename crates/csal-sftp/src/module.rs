use std::io::SeekFrom;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use csal_core::{
    ByteRange, ByteStream, Capabilities, ErrorKind, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta,
    Result, StorageError, StorageModule, WriteMeta, WriteReceipt,
};
use russh_sftp::protocol::FileAttributes;

use crate::client::SftpClient;
use crate::config::SftpConfig;
use crate::paths::{full_path, meta_from_attrs};

const READ_CHUNK: usize = 256 * 1024;

/// An `sftp` instance.
pub struct SftpModule {
    client: SftpClient,
}

pub(crate) fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: SftpConfig = csal_core::parse_config("sftp", config)?;
    Ok(Arc::new(SftpModule::new(config)?))
}

impl SftpModule {
    /// Build from a config (no network I/O: the first call connects).
    pub fn new(config: SftpConfig) -> Result<Self> {
        let (policy, credentials) = config.validate()?;
        Ok(SftpModule { client: SftpClient::new(config, policy, credentials) })
    }

    fn path(&self, object_id: &str) -> Result<String> {
        Ok(full_path(&self.client.config().base(), object_id))
    }

    async fn file_attrs(&self, object_id: &str) -> Result<FileAttributes> {
        let path = self.path(object_id)?;
        let attrs = self.client.run("stat", |s| async move { s.sftp.metadata(path).await }).await?;
        if !attrs.file_type().is_file() {
            return Err(StorageError::not_found(format!("no object '{object_id}' (not a file)")));
        }
        Ok(attrs)
    }

    /// Connect, make sure the base folder exists, and stat it.
    async fn check_base(&self) -> Result<()> {
        let base = self.client.config().base();
        let probe = base.clone();
        match self.client.run("stat base_dir", |s| async move { s.sftp.metadata(probe).await }).await {
            Ok(a) if a.file_type().is_dir() => Ok(()),
            Ok(_) => Err(StorageError::invalid_config(format!("base_dir '{base}' is not a folder"))),
            Err(e) if e.kind() == ErrorKind::NotFound => crate::write::mkdir_p(&self.client, &base).await,
            Err(e) => Err(e),
        }
    }
}

/// Errors while a read streams are connection trouble (the file was opened fine).
fn stream_error(e: StorageError) -> StorageError {
    match e.kind() {
        ErrorKind::Integrity | ErrorKind::Timeout | ErrorKind::Transient => e,
        _ => StorageError::transient(format!("reading: {}", e.message())).with_source(e),
    }
}

#[async_trait]
impl StorageModule for SftpModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::BASIC.with_conditional_create(true)
    }

    async fn validate(&self) -> Result<()> {
        self.check_base().await
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        crate::write::write(&self.client, body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        if let Some(r) = range {
            r.check()?;
        }
        let path = self.path(object_id)?;
        let attrs = self.file_attrs(object_id).await?;
        let size = attrs.len();
        let span = match range {
            Some(r) => r.resolve(size)?,
            None => 0..size,
        };
        let len = span.end - span.start;
        let start = span.start;
        let mut file = self.client.run("opening", |s| async move { s.sftp.open(path).await }).await?;
        if start > 0 {
            let limit = self.client.config().operation_timeout();
            match tokio::time::timeout(limit, file.seek(SeekFrom::Start(start))).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(StorageError::transient("seeking to the range start").with_source(e)),
                Err(_) => return Err(StorageError::timeout("seeking to the range start: no reply in time")),
            }
        }
        let body = ByteStream::from_reader(file.take(len), READ_CHUNK, Some(len))
            .map_stream(|s| s.map(|r| r.map_err(stream_error)))
            .expect_len(len);
        Ok(body)
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        let path = self.path(object_id)?;
        match self.client.run("deleting", |s| async move { s.sftp.remove_file(path).await }).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        crate::list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        let attrs = self.file_attrs(object_id).await?;
        Ok(meta_from_attrs(object_id.to_owned(), &attrs))
    }

    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        if let Err(e) = self.check_base().await {
            return HealthReport::offline(&e);
        }
        let report = HealthReport::ok(started.elapsed())
            .with_detail("host", self.client.config().host.clone())
            .with_detail("base_dir", self.client.config().base());
        match crate::write::sweep_stale_temp(&self.client).await {
            Ok(removed) => report.with_detail("stale_temp_files_removed", removed),
            Err(e) => {
                tracing::warn!(host = %self.client.config().host, error = %e, "sftp: could not sweep old temp files");
                report
            }
        }
    }

    async fn shutdown(&self) -> Result<()> {
        self.client.shutdown().await;
        Ok(())
    }
}
