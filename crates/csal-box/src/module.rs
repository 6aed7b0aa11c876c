use std::sync::Arc;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta, Result,
    StorageModule, WriteMeta, WriteReceipt,
};
use csal_oauth::TokenStore;
use serde_json::Value;

use crate::client::BoxClient;
use crate::config::BoxConfig;
use crate::error::classify;

/// A `box` instance.
pub struct BoxModule {
    client: Arc<BoxClient>,
    session_threshold: usize,
}

pub(crate) fn build(ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: BoxConfig = csal_core::parse_config("box", config)?;
    Ok(Arc::new(BoxModule::new(config, csal_oauth::ConfigTokenStore::for_instance_with_refresh_expiry(ctx))?))
}

impl BoxModule {
    /// A module for `config`; refreshed OAuth tokens are saved to `store`.
    pub fn new(config: BoxConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        config.validate()?;
        let client = BoxClient::new(&config, store)?;
        Ok(BoxModule { client: Arc::new(client), session_threshold: config.session_threshold() })
    }

    /// Successful token refreshes (or client-credentials grants) so far.
    pub fn token_refreshes(&self) -> u64 {
        self.client.api.tokens().refresh_count()
    }

    async fn root(&self) -> Result<Value> {
        let url = self.client.url(&format!("/folders/{}?fields=id,type,name", self.client.root_id));
        self.client.api.json("check the root folder", |http| http.get(&url)).await
    }
}

#[async_trait]
impl StorageModule for BoxModule {
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
            // Depends on the Box plan (250 MB free, up to 150 GB / 500 GB).
            max_object_size: None,
        }
    }

    async fn validate(&self) -> Result<()> {
        self.root().await.map(|_| ())
    }

    async fn refresh_credentials(&self) -> Result<()> {
        self.client.api.tokens().force_refresh().await.map(|_| ())
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        crate::write::write(&self.client, self.session_threshold, body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        crate::read::read(&self.client, object_id, range).await
    }

    /// Deletes only a file (moved to Box's trash, as every Box delete is);
    /// an id naming a folder deletes nothing.
    async fn delete(&self, object_id: &str) -> Result<()> {
        for _ in 0..2 {
            let id = match self.client.file_id(object_id).await {
                Ok(id) => id,
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            };
            let what = format!("delete '{object_id}'");
            let url = self.client.url(&format!("/files/{id}"));
            let answer = self.client.api.send(&what, |http| http.delete(&url)).await?;
            self.client.forget_file(object_id);
            match answer {
                Ok(_) => return Ok(()),
                // A stale cached id: look the path up again.
                Err(e) if e.status.as_u16() == 404 => continue,
                Err(e) => return Err(classify(e, &what)),
            }
        }
        Ok(())
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        crate::list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        crate::read::stat(&self.client, object_id).await
    }

    /// Ok when the root folder answers; degraded whenever the last token
    /// refresh failed or the refresh token expires within a week; offline
    /// for other failures.
    async fn health_check(&self) -> HealthReport {
        self.client.api.health(self.root()).await
    }
}
