use std::sync::Arc;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta, Result,
    StorageError, StorageModule, WriteMeta, WriteReceipt,
};
use csal_oauth::TokenStore;
use serde_json::Value;

use crate::client::GraphClient;
use crate::config::OneDriveConfig;
use crate::error::classify;

/// Largest file OneDrive accepts (250 GB).
const MAX_FILE: u64 = 250 * 1_000_000_000;

/// A `onedrive` instance.
pub struct OneDriveModule {
    client: GraphClient,
    chunk_size: usize,
}

pub(crate) fn build(ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: OneDriveConfig = csal_core::parse_config("onedrive", config)?;
    Ok(Arc::new(OneDriveModule::new(config, csal_oauth::ConfigTokenStore::for_instance_with_refresh_expiry(ctx))?))
}

impl OneDriveModule {
    /// A module for `config`; refreshed OAuth tokens are saved to `store`.
    pub fn new(config: OneDriveConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        config.validate()?;
        let client = GraphClient::new(&config, store)?;
        Ok(OneDriveModule { client, chunk_size: config.chunk_size() })
    }

    pub fn token_refreshes(&self) -> u64 {
        self.client.api.tokens().refresh_count()
    }

    async fn drive(&self) -> Result<Value> {
        let url = self.client.drive_url().to_owned();
        self.client.api.json("check the drive", |http| http.get(&url)).await
    }
}

#[async_trait]
impl StorageModule for OneDriveModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ranged_read: true,
            list_pagination: true,
            presign: false,
            multipart: true,
            conditional_create: true,
            content_type: false,
            user_metadata: false,
            modified_time: true,
            max_object_size: Some(MAX_FILE),
        }
    }

    async fn validate(&self) -> Result<()> {
        self.drive().await.map(|_| ())
    }

    async fn refresh_credentials(&self) -> Result<()> {
        self.client.api.tokens().force_refresh().await.map(|_| ())
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        crate::write::write(&self.client, self.chunk_size, body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        crate::read::read(&self.client, object_id, range).await
    }

    /// Deletes only a file, and only the version just looked at (`If-Match`);
    /// an id that names a folder is refused rather than deleted recursively.
    async fn delete(&self, object_id: &str) -> Result<()> {
        let item = match crate::read::stat_raw(&self.client, object_id).await {
            Ok(item) => item,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        if item.get("file").is_none() {
            return Err(StorageError::invalid_input(format!("delete '{object_id}': that is a folder, not an object")));
        }
        let etag = item.get("eTag").and_then(Value::as_str).map(str::to_owned);
        let what = format!("delete '{object_id}'");
        let url = self.client.item_url(object_id);
        let answer = self
            .client
            .api
            .send(&what, |http| {
                let req = http.delete(&url);
                match &etag {
                    Some(e) => req.header("If-Match", e),
                    None => req,
                }
            })
            .await?;
        match answer {
            Ok(_) => Ok(()),
            Err(e) if e.status.as_u16() == 404 => Ok(()),
            Err(e) => Err(classify(e, &what)),
        }
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        crate::list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        crate::read::stat(&self.client, object_id).await
    }

    /// Ok when the drive answers; degraded whenever the last token refresh
    /// failed; offline for other failures.
    async fn health_check(&self) -> HealthReport {
        self.client.api.health(self.drive()).await
    }
}
