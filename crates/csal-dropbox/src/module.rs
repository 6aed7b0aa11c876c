use std::sync::Arc;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, ListPage, ListRequest, ObjectMeta, Result, StorageError, WriteMeta,
    WriteReceipt,
};
use csal_http::Quota;
use csal_oauth::{FileSyncService, OAuthProviderSpec, TokenManager, TokenStore};
use dropbox_sdk::files::{self, DeleteArg, DeleteError, LookupError, Metadata};
use dropbox_sdk::users::{SpaceAllocation, SpaceUsage};

use crate::client::DropboxClient;
use crate::config::DropboxConfig;

/// Largest file an upload session can build (Dropbox: 350 GB).
const MAX_FILE: u64 = 350 * 1_000_000_000;

/// A `dropbox` instance.
pub type DropboxModule = csal_oauth::OAuthModule<Dropbox>;

/// The service half of [`DropboxModule`].
pub struct Dropbox {
    client: DropboxClient,
    chunk_size: usize,
}

/// users/get_space_usage as a quota
/// (<https://www.dropbox.com/developers/documentation/http/documentation#users-get_space_usage>):
/// an individual account's allocation, or a team's shared one, narrowed to
/// the member's own limit when the team sets one (0 means none), whichever
/// leaves less.
fn space_quota(usage: &SpaceUsage) -> Option<Quota> {
    match &usage.allocation {
        SpaceAllocation::Individual(a) => Some(Quota::new(Some(a.allocated), Some(usage.used))),
        SpaceAllocation::Team(t) => {
            let team = Quota::new(Some(t.allocated), Some(t.used));
            if t.user_within_team_space_allocated == 0 {
                return Some(team);
            }
            Some(Quota::new(Some(t.user_within_team_space_allocated), Some(usage.used)).tighter(team))
        }
        // `Other` and variants newer than the SDK: no quota to tell.
        _ => None,
    }
}

#[async_trait]
impl FileSyncService for Dropbox {
    type Config = DropboxConfig;
    type Tokens = TokenManager;
    const OAUTH: &'static OAuthProviderSpec = &crate::oauth::SPEC;
    const CAPABILITIES: Capabilities = Capabilities::FILE_SYNC.with_max_object_size(Some(MAX_FILE));

    fn new(config: DropboxConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        config.validate()?;
        let client = DropboxClient::new(&config, store)?;
        Ok(Dropbox { client, chunk_size: config.chunk_size() })
    }

    fn tokens(&self) -> &TokenManager {
        &self.client.tokens
    }

    /// `users/get_current_account`: the token works and the account answers.
    async fn probe(&self) -> Result<()> {
        let call = self.client.call("check the account").await?;
        dropbox_sdk::users::get_current_account(&call).await.map(|_| ()).map_err(|e| call.fail(e))
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        let call = self.client.call("read the space usage").await?;
        let usage = dropbox_sdk::users::get_space_usage(&call).await.map_err(|e| call.fail(e))?;
        Ok(space_quota(&usage))
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
}
