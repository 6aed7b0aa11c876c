use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use csal_http::Quota;
use serde_json::{Value, json};

use csal_core::{
    ByteRange, ByteStream, Capabilities, ErrorKind, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta,
    Result, StorageModule, WriteMeta, WriteReceipt,
};

use crate::client::MegaClient;
use crate::config::MegaConfig;
use crate::{list, read, write};

/// A folder of a MEGA account as a CSAL storage instance.
pub struct MegaModule {
    client: MegaClient,
}

pub(crate) fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: MegaConfig = csal_core::parse_config("mega", config)?;
    Ok(Arc::new(MegaModule::new(config)?))
}

impl MegaModule {
    /// A module from its config; logs in lazily, on first use.
    pub fn new(config: MegaConfig) -> Result<Self> {
        Ok(MegaModule { client: MegaClient::new(config.resolve()?)? })
    }

    /// The account's storage quota: `uq` with `strg: 1` answers `mstrg`
    /// (maximum bytes) and `cstrg` (bytes stored), as the MEGA SDK's
    /// `CommandGetUserQuota` reads them (meganz/sdk, src/commands.cpp).
    async fn quota(&self) -> Result<Option<Quota>> {
        let (v, _) = self.client.call("read the storage quota", json!({"a": "uq", "strg": 1, "xfer": 1})).await?;
        let max = v.get("mstrg").and_then(Value::as_u64);
        let used = v.get("cstrg").and_then(Value::as_u64);
        Ok((max.is_some() || used.is_some()).then(|| Quota::new(max.filter(|m| *m > 0), used)))
    }
}

#[async_trait]
impl StorageModule for MegaModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::BASIC.with_multipart(true)
    }

    async fn validate(&self) -> Result<()> {
        self.client.call("user info", json!({"a": "ug"})).await.map(|_| ())
    }

    async fn refresh_credentials(&self) -> Result<()> {
        self.client.session(true).await.map(|_| ())
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        write::write(&self.client, body, &meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        read::read(&self.client, object_id, range).await
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        let node = match self.client.file(object_id).await {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match self.client.call("delete", json!({"a": "d", "n": node.handle})).await {
            // ENOENT: already gone (deleted by another client).
            Ok(_) => self.client.record_removed(&node.handle),
            Err(e) if e.kind() == ErrorKind::NotFound => self.client.record_removed(&node.handle),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        let node = self.client.file(object_id).await?;
        Ok(list::object_meta(object_id.to_owned(), &node))
    }

    /// Ok when the session answers; the account's storage quota (`uq`)
    /// gives the free bytes, and `degraded` when it is nearly used.
    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        let report = match self.validate().await {
            Ok(()) => HealthReport::ok(started.elapsed()),
            Err(e) => return HealthReport::offline(&e),
        };
        csal_http::with_quota(report, self.quota().await)
    }
}
