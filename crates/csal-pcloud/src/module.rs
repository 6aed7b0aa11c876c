use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use csal_core::{
    ByteRange, ByteStream, Capabilities, ErrorKind, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta,
    Result, StorageError, StorageModule, WriteMeta, WriteReceipt,
};

use crate::client::{Body, PcloudClient, object_meta};
use crate::config::PcloudConfig;
use crate::{list, write};

/// A pCloud account folder as a CSAL storage instance.
pub struct PcloudModule {
    client: PcloudClient,
}

pub(crate) fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: PcloudConfig = csal_core::parse_config("pcloud", config)?;
    Ok(Arc::new(PcloudModule::new(config)?))
}

impl PcloudModule {
    /// A module from its config; no network until first use.
    pub fn new(config: PcloudConfig) -> Result<Self> {
        Ok(PcloudModule { client: PcloudClient::new(config.resolve()?)? })
    }

    async fn file_meta(&self, object_id: &str) -> Result<Value> {
        let m = self.client.stat_path(&self.client.path_of(object_id)).await?;
        if m.get("isfolder").and_then(Value::as_bool).unwrap_or(false) {
            return Err(StorageError::not_found(format!("pcloud: {object_id} is a folder, not an object")));
        }
        Ok(m)
    }
}

#[async_trait]
impl StorageModule for PcloudModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::BASIC.with_multipart(true)
    }

    async fn validate(&self) -> Result<()> {
        self.client.call("userinfo", &[], Body::None).await.map(|_| ())
    }

    async fn refresh_credentials(&self) -> Result<()> {
        self.validate().await
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        write::write(&self.client, body, &meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let m = self.file_meta(object_id).await?;
        let size = m.get("size").and_then(Value::as_u64).unwrap_or(0);
        let span = match range {
            Some(r) => r.resolve(size)?,
            None => 0..size,
        };
        if span.is_empty() {
            return Ok(ByteStream::empty());
        }
        let url = self.client.file_link(&self.client.path_of(object_id)).await?;
        let partial = span.start > 0 || span.end < size;
        let range = partial.then(|| ByteRange::inclusive(span.start, span.end - 1));
        let resp = self.client.download(&url, range.map(|r| r.to_http_header())).await?;
        csal_http::ranged_body(resp, range, Some(size), "pcloud download")
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        match self.client.call("deletefile", &[("path", self.client.path_of(object_id))], Body::None).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        let m = self.file_meta(object_id).await?;
        Ok(object_meta(object_id.to_owned(), &m))
    }

    /// Ok when `userinfo` answers; its `quota` / `usedquota` give the free
    /// bytes, and `degraded` when the account is nearly full.
    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        match self.client.call("userinfo", &[], Body::None).await {
            Ok(v) => {
                let quota = csal_http::Quota::new(
                    v.get("quota").and_then(Value::as_u64).filter(|q| *q > 0),
                    v.get("usedquota").and_then(Value::as_u64),
                );
                quota.apply(HealthReport::ok(started.elapsed()))
            }
            Err(e) => HealthReport::offline(&e),
        }
    }
}
