use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use csal_core::{
    ByteRange, ByteStream, Capabilities, ErrorKind, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta,
    Result, StorageError, StorageModule, WriteMeta, WriteReceipt,
};
use suppaftp::tokio::TransferStream;

use crate::tls::FlushingTls;

use crate::client::{Conn, FtpPool, timed};
use crate::config::FtpConfig;
use crate::error::io_error;
use crate::paths::full_path;

const READ_CHUNK: u64 = 256 * 1024;

/// An `ftp` instance.
pub struct FtpModule {
    pool: Arc<FtpPool>,
}

pub(crate) fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: FtpConfig = csal_core::parse_config("ftp", config)?;
    Ok(Arc::new(FtpModule::new(config)?))
}

impl FtpModule {
    /// Build from a config (no network I/O: the first call connects).
    pub fn new(config: FtpConfig) -> Result<Self> {
        Ok(FtpModule { pool: FtpPool::new(config)? })
    }

    async fn path(&self, object_id: &str) -> Result<String> {
        Ok(full_path(&self.pool.root().await?, object_id))
    }

    /// SIZE of a file: NotFound for missing files and folders.
    async fn size(&self, conn: &mut Conn, path: &str, object_id: &str) -> Result<u64> {
        let limit = conn.limit();
        let size = timed(limit, "SIZE", conn.ftp().size(path)).await;
        conn.check(size).map(|s| s as u64).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                StorageError::not_found(format!("no object '{object_id}'")).with_source(e)
            } else {
                e
            }
        })
    }

    /// Connect, make sure the base folder exists (CWD, else MKD it).
    async fn check_base(&self) -> Result<()> {
        let root = self.pool.root().await?;
        let mut conn = self.pool.checkout().await?;
        let limit = conn.limit();
        let cwd = timed(limit, "CWD base_dir", conn.ftp().cwd(root.as_str())).await;
        match conn.check(cwd) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                crate::write::mkdir_p(&mut conn, &root).await?;
                let cwd = timed(limit, "CWD base_dir", conn.ftp().cwd(root.as_str())).await;
                conn.check(cwd)
            }
            Err(e) => Err(e),
        }
    }
}

struct Download {
    conn: Conn,
    transfer: Option<TransferStream<FlushingTls>>,
    remaining: u64,
    /// The range runs to the end of the file: finish the transfer cleanly
    /// (226) and keep the connection; otherwise drop the data connection and
    /// the control connection with it (no ABOR dance).
    to_eof: bool,
}

impl Download {
    async fn next_chunk(&mut self) -> Option<Result<Bytes>> {
        let limit = self.conn.limit();
        let transfer = self.transfer.as_mut()?;
        if self.remaining == 0 {
            let transfer = self.transfer.take()?;
            if self.to_eof {
                let finished = timed(limit, "finishing the download", transfer.finish()).await;
                if finished.is_err() {
                    self.conn.poison();
                }
            } else {
                drop(transfer);
                self.conn.poison();
            }
            return None;
        }
        let mut buf = vec![0u8; self.remaining.min(READ_CHUNK) as usize];
        match tokio::time::timeout(limit, transfer.read(&mut buf)).await {
            Ok(Ok(0)) => {
                // Short: expect_len turns this into an Integrity error.
                self.transfer = None;
                self.conn.poison();
                None
            }
            Ok(Ok(n)) => {
                buf.truncate(n);
                self.remaining -= n as u64;
                Some(Ok(Bytes::from(buf)))
            }
            Ok(Err(e)) => {
                self.transfer = None;
                self.conn.poison();
                Some(Err(io_error(e, "downloading")))
            }
            Err(_) => {
                self.transfer = None;
                self.conn.poison();
                Some(Err(StorageError::timeout("downloading: no data in time")))
            }
        }
    }
}

#[async_trait]
impl StorageModule for FtpModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    async fn validate(&self) -> Result<()> {
        self.check_base().await
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        crate::write::write(&self.pool, body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        if let Some(r) = range {
            r.check()?;
        }
        let path = self.path(object_id).await?;
        let mut conn = self.pool.checkout().await?;
        let size = self.size(&mut conn, &path, object_id).await?;
        let span = match range {
            Some(r) => r.resolve(size)?,
            None => 0..size,
        };
        let len = span.end - span.start;
        if len == 0 {
            return Ok(ByteStream::empty());
        }
        let limit = conn.limit();
        if span.start > 0 {
            let rest = timed(limit, "REST", conn.ftp().resume_transfer(span.start as usize)).await;
            conn.check(rest)?;
        }
        let opened = timed(limit, "RETR", conn.ftp().retr_as_stream(path.as_str())).await;
        let transfer = conn.check(opened).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                StorageError::not_found(format!("no object '{object_id}'")).with_source(e)
            } else {
                e
            }
        })?;
        let download = Download { conn, transfer: Some(transfer), remaining: len, to_eof: span.end == size };
        let stream = futures::stream::unfold(download, |mut d| async move { d.next_chunk().await.map(|c| (c, d)) });
        Ok(ByteStream::new(stream, Some(len)).expect_len(len))
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        let path = self.path(object_id).await?;
        let mut conn = self.pool.checkout().await?;
        let limit = conn.limit();
        let removed = timed(limit, "DELE", conn.ftp().rm(path.as_str())).await;
        match conn.check(removed) {
            Ok(()) => Ok(()),
            // 550 is also "permission denied": it is success only if the file is gone.
            Err(e) if e.kind() == ErrorKind::NotFound => match self.size(&mut conn, &path, object_id).await {
                Err(gone) if gone.kind() == ErrorKind::NotFound => Ok(()),
                Err(other) => Err(other),
                Ok(_) => {
                    Err(StorageError::permanent(format!("the server refused to delete '{object_id}'")).with_source(e))
                }
            },
            Err(e) => Err(e),
        }
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        crate::list::list(&self.pool, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        let path = self.path(object_id).await?;
        let mut conn = self.pool.checkout().await?;
        let size = self.size(&mut conn, &path, object_id).await?;
        let limit = conn.limit();
        let mdtm = timed(limit, "MDTM", conn.ftp().mdtm(path.as_str())).await;
        let modified = conn.check(mdtm).ok().map(|t| SystemTime::from(t.and_utc()));
        Ok(ObjectMeta { modified, ..ObjectMeta::new(object_id, size) })
    }

    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        if let Err(e) = self.check_base().await {
            return HealthReport::offline(&e);
        }
        let report = HealthReport::ok(started.elapsed())
            .with_detail("host", self.pool.config().host.clone())
            .with_detail("max_connections", self.pool.config().max_connections);
        match crate::write::sweep_stale_temp(&self.pool).await {
            Ok(removed) => report.with_detail("stale_temp_files_removed", removed),
            Err(e) => {
                tracing::warn!(host = %self.pool.config().host, error = %e, "ftp: could not sweep old temp files");
                report
            }
        }
    }

    async fn shutdown(&self) -> Result<()> {
        self.pool.shutdown().await;
        Ok(())
    }
}
