use std::sync::Arc;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, ListPage, ListRequest, ObjectMeta, Result, WriteMeta, WriteReceipt,
};
use csal_http::Quota;
use csal_oauth::{FileSyncService, OAuthProviderSpec, TokenManager, TokenStore};
use serde_json::Value;

use crate::client::BoxClient;
use crate::config::BoxConfig;
use crate::error::classify;

/// A `box` instance.
pub type BoxModule = csal_oauth::OAuthModule<BoxService>;

/// The service half of [`BoxModule`].
pub struct BoxService {
    client: Arc<BoxClient>,
    session_threshold: usize,
}

impl BoxService {
    async fn root(&self) -> Result<Value> {
        let url = self.client.url(&format!("/folders/{}?fields=id,type,name", self.client.root_id));
        self.client.api.json("check the root folder", |http| http.get(&url)).await
    }
}

/// Box reports an unlimited account's `space_amount` as this sentinel (and
/// takes `-1` for unlimited in "Update user").
const UNLIMITED_SPACE: i64 = 999_999_999_999_999;

/// `space_amount` / `space_used` of "Get current user"
/// (<https://developer.box.com/reference/get-users-me/>) as a quota: the
/// authenticated user's (Box charges an upload to the owner of its folder:
/// the same user unless the root folder is someone else's collaboration),
/// unlimited when negative or the sentinel.
fn user_space(me: &Value) -> Option<Quota> {
    let used = me["space_used"].as_u64();
    let total = match me["space_amount"].as_i64() {
        Some(amount) if (0..UNLIMITED_SPACE).contains(&amount) => Some(amount as u64),
        Some(_) => None,
        None if used.is_none() => return None,
        None => None,
    };
    Some(Quota::new(total, used))
}

#[async_trait]
impl FileSyncService for BoxService {
    type Config = BoxConfig;
    type Tokens = TokenManager;
    const OAUTH: &'static OAuthProviderSpec = &crate::oauth::SPEC;
    // The largest file depends on the Box plan (250 MB free, up to 150 GB / 500 GB).
    const CAPABILITIES: Capabilities = Capabilities::FILE_SYNC;

    fn new(config: BoxConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        config.validate()?;
        let client = BoxClient::new(&config, store)?;
        Ok(BoxService { client: Arc::new(client), session_threshold: config.session_threshold() })
    }

    fn tokens(&self) -> &TokenManager {
        self.client.api.tokens()
    }

    async fn probe(&self) -> Result<()> {
        self.root().await.map(|_| ())
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        let url = self.client.url("/users/me?fields=space_amount,space_used");
        let me = self.client.api.json("read the user's space", |http| http.get(&url)).await?;
        Ok(user_space(&me))
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
}
