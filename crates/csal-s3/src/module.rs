//! `S3Module`: the `StorageModule` impl. Thin: the calls live in
//! `client.rs`, `write.rs` and `list.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, ErrorKind, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta,
    Result, StaleUploads, StorageError, StorageModule, WriteMeta, WriteReceipt,
};

use crate::client::S3Client;
use crate::config::S3Config;
use crate::write::Uploader;

/// One S3 bucket (or a prefix inside it).
pub struct S3Module {
    config: S3Config,
    client: S3Client,
    uploader: Uploader,
}

impl std::fmt::Debug for S3Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Module").field("config", &self.config).finish_non_exhaustive()
    }
}

pub(crate) fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: S3Config = csal_core::parse_config("s3", config)?;
    Ok(Arc::new(S3Module::new(config)?))
}

impl S3Module {
    /// Build from a typed config (validated here). Does no network I/O.
    pub fn new(config: S3Config) -> Result<Self> {
        config.validate()?;
        let client = S3Client::new(&config)?;
        let uploader = Uploader::new(&config);
        Ok(S3Module { config, client, uploader })
    }

    /// The config the module was built from.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// Copy in parts (`UploadPartCopy`) any object over `single_max` bytes:
    /// lets tests exercise the path S3 takes above 5 GiB with small objects.
    #[doc(hidden)]
    pub async fn copy_in_parts_above(&self, object_id: &str, meta: WriteMeta, single_max: u64) -> Result<WriteReceipt> {
        self.uploader.copy(&self.client, object_id, &meta, single_max).await
    }

    /// The underlying SDK client (for benchmarks and interop tests).
    pub fn sdk_client(&self) -> &aws_sdk_s3::Client {
        &self.client.sdk
    }
}

#[async_trait]
impl StorageModule for S3Module {
    fn capabilities(&self) -> Capabilities {
        Capabilities::OBJECT_STORE
            .with_presign(true)
            .with_conditional_create(self.uploader.conditional_create())
            // Objects stored in one PUT (up to `part_size_mb`); see CRC32C_METADATA.
            .with_verified_reads(true)
            .with_server_side_copy(true)
            // 10,000 parts of the configured size (and S3's 5 TiB cap).
            .with_max_object_size(Some((self.config.part_size() as u64 * crate::config::MAX_PARTS).min(5 << 40)))
            .with_legal_hold(self.config.object_lock)
    }

    async fn validate(&self) -> Result<()> {
        self.client.head_bucket().await.map_err(|e| match e.kind() {
            ErrorKind::NotFound => StorageError::invalid_config(format!(
                "bucket '{}' does not exist (or is not visible with these credentials)",
                self.config.bucket
            )),
            _ => e,
        })
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        self.uploader.upload(&self.client, body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        if let Some(r) = &range {
            r.check()?;
        }
        self.client.get(object_id, range).await
    }

    async fn copy(&self, object_id: &str, meta: WriteMeta) -> Result<WriteReceipt> {
        self.uploader.copy(&self.client, object_id, &meta, crate::copy::COPY_OBJECT_MAX).await
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        if self.config.object_lock {
            crate::lock::delete_versions(&self.client, object_id).await
        } else {
            self.client.delete(object_id).await
        }
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        crate::list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        self.client.head(object_id).await
    }

    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        match self.client.head_bucket().await {
            Ok(()) => {
                let latency = started.elapsed().max(Duration::from_nanos(1));
                let slow = Duration::from_millis(self.config.degraded_latency_ms);
                let report = if latency > slow {
                    HealthReport::degraded(
                        Some(latency),
                        format!("HEAD bucket took {} ms (over {} ms)", latency.as_millis(), slow.as_millis()),
                    )
                } else {
                    HealthReport::ok(latency)
                };
                let mut report = report
                    .with_detail("bucket", self.config.bucket.clone())
                    .with_detail("conditional_create", self.uploader.conditional_create())
                    .with_detail("object_lock", self.config.object_lock);
                StaleUploads::count_into(&mut report, self.stale_uploads(false)).await;
                report
            }
            Err(e) => HealthReport::offline(&e),
        }
    }

    async fn set_legal_hold(&self, object_id: &str, hold: bool) -> Result<()> {
        if !self.config.object_lock {
            return Err(StorageError::unsupported(
                "legal holds need an Object Lock bucket (turn on `object_lock` if the bucket has it)",
            ));
        }
        crate::lock::set_legal_hold(&self.client, object_id, hold).await
    }

    async fn stale_uploads(&self, remove: bool) -> Result<StaleUploads> {
        crate::stale::sweep(&self.client, self.config.stale_upload_age(), remove).await
    }

    async fn presign_read(&self, object_id: &str, expires_in: Duration) -> Result<String> {
        self.client.presign_get(object_id, expires_in).await
    }
}
