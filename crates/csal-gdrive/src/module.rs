use std::sync::Arc;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, ListPage, ListRequest, ObjectMeta, Result, WriteMeta, WriteReceipt,
};
use csal_http::Quota;
use csal_oauth::{BearerSource, FileSyncService, OAuthProviderSpec, TokenStore};
use serde_json::Value;

use crate::client::DriveClient;
use crate::config::GDriveConfig;
use crate::error::classify;

/// Largest file Drive stores (5 TB).
const MAX_FILE: u64 = 5 * 1_000_000_000_000;

/// A `gdrive` instance.
pub type GDriveModule = csal_oauth::OAuthModule<GDrive>;

/// Google Drive, the service half of [`GDriveModule`].
pub struct GDrive {
    client: DriveClient,
    chunk_size: usize,
}

impl GDrive {
    async fn root(&self) -> Result<Value> {
        let url = format!("{}/{}", self.client.files_url(), self.client.root_id);
        let mut query = self.client.common();
        query.push(("fields", "id,mimeType".to_owned()));
        self.client.api.json("check the root folder", |http| http.get(&url).query(&query)).await
    }
}

/// about.get's `storageQuota` (int64s as JSON strings; `limit` is absent
/// when the storage is unlimited):
/// <https://developers.google.com/drive/api/reference/rest/v3/about>.
fn storage_quota(about: &Value) -> Option<Quota> {
    let number = |key: &str| {
        let v = &about["storageQuota"][key];
        v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_u64())
    };
    about.get("storageQuota").map(|_| Quota::new(number("limit"), number("usage")))
}

#[async_trait]
impl FileSyncService for GDrive {
    type Config = GDriveConfig;
    /// A user's tokens or a service account's (see `auth.rs`).
    type Tokens = dyn BearerSource;
    const OAUTH: &'static OAuthProviderSpec = &crate::oauth::SPEC;
    const CAPABILITIES: Capabilities = Capabilities::FILE_SYNC
        // Drive allows two files with one name: uniqueness comes from the
        // ULID in every object name, not from the server.
        .with_conditional_create(false)
        .with_content_type(true)
        .with_max_object_size(Some(MAX_FILE));

    fn new(config: GDriveConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        config.validate()?;
        let client = DriveClient::new(&config, store)?;
        Ok(GDrive { client, chunk_size: config.chunk_size() })
    }

    fn tokens(&self) -> &(dyn BearerSource + 'static) {
        self.client.api.tokens().as_ref()
    }

    async fn probe(&self) -> Result<()> {
        self.root().await.map(|_| ())
    }

    /// The user's quota; none on a shared drive, whose files count against
    /// the organisation's pooled storage rather than the user's.
    async fn quota(&self) -> Result<Option<Quota>> {
        if self.client.shared_drive() {
            return Ok(None);
        }
        let url = self.client.about_url();
        let about = self
            .client
            .api
            .json("read the storage quota", |http| http.get(&url).query(&[("fields", "storageQuota")]))
            .await?;
        Ok(storage_quota(&about))
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
}
