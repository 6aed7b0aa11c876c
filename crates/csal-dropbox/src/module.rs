use std::sync::Arc;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta, Result,
    StorageError, StorageModule, WriteMeta, WriteReceipt,
};
use csal_oauth::TokenStore;
use dropbox_sdk::files::{self, DeleteArg, DeleteError, LookupError, Metadata};

use crate::client::DropboxClient;
use crate::config::DropboxConfig;

/// Largest file an upload session can build (Dropbox: 350 GB).
const MAX_FILE: u64 = 350 * 1_000_000_000;

/// A `dropbox` instance.
pub struct DropboxModule {
    client: DropboxClient,
    chunk_size: usize,
}

pub(crate) fn build(ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: DropboxConfig = csal_core::parse_config("dropbox", config)?;
    Ok(Arc::new(DropboxModule::new(config, csal_oauth::ConfigTokenStore::for_instance(ctx))?))
}

impl DropboxModule {
    /// A module for `config`; refreshed OAuth tokens are saved to `store`.
    pub fn new(config: DropboxConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        config.validate()?;
        let client = DropboxClient::new(&config, store)?;
        Ok(DropboxModule { client, chunk_size: config.chunk_size() })
    }

    /// Token refreshes done so far (for tests and the admin UI).
    pub fn token_refreshes(&self) -> u64 {
        self.client.tokens.refresh_count()
    }

    /// `users/get_current_account`: the token works and the account answers.
    async fn current_account(&self) -> Result<()> {
        let call = self.client.call("check the account").await?;
        dropbox_sdk::users::get_current_account(&call).await.map(|_| ()).map_err(|e| call.fail(e))
    }
}

#[async_trait]
impl StorageModule for DropboxModule {
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
        self.current_account().await
    }

    async fn refresh_credentials(&self) -> Result<()> {
        self.client.tokens.force_refresh().await.map(|_| ())
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        crate::write::write(&self.client, self.chunk_size, body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        crate::read::read(&self.client, object_id, range).await
    }

    /// Deletes only a file, and only the revision we just looked at
    /// (`parent_rev`): an id that names a folder is refused instead of
    /// deleting the folder with everything in it.
    async fn delete(&self, object_id: &str) -> Result<()> {
        let m = match crate::read::stat_raw(&self.client, object_id).await {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        let rev = match m {
            Metadata::File(f) => f.rev,
            _ => {
                return Err(StorageError::invalid_input(format!(
                    "delete '{object_id}': that is a folder, not an object"
                )));
            }
        };
        let call = self.client.call(&format!("delete '{object_id}'")).await?;
        let arg = DeleteArg::new(self.client.path_of(object_id)).with_parent_rev(rev);
        match files::delete_v2(&call, &arg).await {
            Ok(_) => Ok(()),
            Err(dropbox_sdk::Error::Api(DeleteError::PathLookup(LookupError::NotFound))) => Ok(()),
            Err(e) => Err(call.fail(e)),
        }
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        crate::list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        crate::read::stat(&self.client, object_id).await
    }

    /// Ok when the account answers; degraded (with the reason) whenever the
    /// last token refresh failed, even if a still-valid token works; offline
    /// when the account cannot be reached for another reason.
    async fn health_check(&self) -> HealthReport {
        csal_oauth::check_health(&*self.client.tokens, self.current_account()).await
    }
}
