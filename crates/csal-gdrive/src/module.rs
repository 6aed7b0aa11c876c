use std::sync::Arc;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta, Result,
    StorageModule, WriteMeta, WriteReceipt,
};
use csal_oauth::TokenStore;
use serde_json::Value;

use crate::client::DriveClient;
use crate::config::GDriveConfig;
use crate::error::classify;

/// Largest file Drive stores (5 TB).
const MAX_FILE: u64 = 5 * 1_000_000_000_000;

/// A `gdrive` instance.
pub struct GDriveModule {
    client: DriveClient,
    chunk_size: usize,
}

pub(crate) fn build(ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: GDriveConfig = csal_core::parse_config("gdrive", config)?;
    Ok(Arc::new(GDriveModule::new(config, csal_oauth::ConfigTokenStore::for_instance(ctx))?))
}

impl GDriveModule {
    pub fn new(config: GDriveConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        config.validate()?;
        let client = DriveClient::new(&config, store)?;
        Ok(GDriveModule { client, chunk_size: config.chunk_size() })
    }

    pub fn token_refreshes(&self) -> u64 {
        self.client.api.tokens().refresh_count()
    }

    async fn root(&self) -> Result<Value> {
        let url = format!("{}/{}", self.client.files_url(), self.client.root_id);
        let mut query = self.client.common();
        query.push(("fields", "id,mimeType".to_owned()));
        self.client
            .api
            .json("check the root folder", |http| http.get(&url).query(&query))
            .await
    }
}

#[async_trait]
impl StorageModule for GDriveModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ranged_read: true,
            list_pagination: true,
            presign: false,
            multipart: true,
            // Drive allows two files with one name: uniqueness comes from the
            // ULID in every object name, not from the server.
            conditional_create: false,
            content_type: true,
            user_metadata: false,
            modified_time: true,
            max_object_size: Some(MAX_FILE),
        }
    }

    async fn validate(&self) -> Result<()> {
        self.root().await.map(|_| ())
    }

    async fn refresh_credentials(&self) -> Result<()> {
        self.client.api.tokens().force_refresh().await
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        crate::write::write(&self.client, self.chunk_size, body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        crate::read::read(&self.client, object_id, range).await
    }

    /// Resolves the id to a file (never a folder) and deletes that file by
    /// its Drive id; missing is success.
    async fn delete(&self, object_id: &str) -> Result<()> {
        let file = match self.client.file(object_id).await {
            Ok(f) => f,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(id) = file["id"].as_str() else { return Ok(()) };
        let what = format!("delete '{object_id}'");
        let url = format!("{}/{id}", self.client.files_url());
        let query = self.client.common();
        match self.client.api.send(&what, |http| http.delete(&url).query(&query)).await? {
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

    async fn health_check(&self) -> HealthReport {
        self.client.api.health(self.root()).await
    }
}
