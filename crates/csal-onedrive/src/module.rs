use std::sync::Arc;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, ListPage, ListRequest, ObjectMeta, Result, StorageError, WriteMeta,
    WriteReceipt,
};
use csal_http::Quota;
use csal_oauth::{FileSyncService, OAuthProviderSpec, TokenManager, TokenStore};
use serde_json::Value;

use crate::client::GraphClient;
use crate::config::OneDriveConfig;
use crate::error::classify;

/// Largest file OneDrive accepts (250 GB).
const MAX_FILE: u64 = 250 * 1_000_000_000;

/// A `onedrive` instance.
pub type OneDriveModule = csal_oauth::OAuthModule<OneDrive>;

/// The service half of [`OneDriveModule`].
pub struct OneDrive {
    client: GraphClient,
    chunk_size: usize,
}

impl OneDrive {
    async fn drive(&self) -> Result<Value> {
        let url = self.client.drive_url().to_owned();
        self.client.api.json("check the drive", |http| http.get(&url)).await
    }
}

/// The drive's `quota` facet ("quota resource type",
/// <https://learn.microsoft.com/en-us/graph/api/resources/quota>): `total`,
/// `used`, `remaining` and a `state` that is `nearing` below 10% left,
/// `critical` below 1%, `exceeded` past the total. Graph's own verdict
/// (anything but `normal`) is the reason health turns degraded.
fn drive_quota(drive: &Value) -> Option<Quota> {
    let q = drive.get("quota")?;
    let state = q["state"].as_str().filter(|s| !s.is_empty() && *s != "normal");
    Some(Quota {
        total: q["total"].as_u64().filter(|t| *t > 0),
        used: q["used"].as_u64(),
        remaining: q["remaining"].as_u64(),
        warning: state.map(|s| format!("OneDrive quota state is {s}")),
    })
}

#[async_trait]
impl FileSyncService for OneDrive {
    type Config = OneDriveConfig;
    type Tokens = TokenManager;
    const OAUTH: &'static OAuthProviderSpec = &crate::oauth::SPEC;
    const CAPABILITIES: Capabilities = Capabilities::FILE_SYNC.with_max_object_size(Some(MAX_FILE));

    fn new(config: OneDriveConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        config.validate()?;
        let client = GraphClient::new(&config, store)?;
        Ok(OneDrive { client, chunk_size: config.chunk_size() })
    }

    fn tokens(&self) -> &TokenManager {
        self.client.api.tokens()
    }

    async fn probe(&self) -> Result<()> {
        self.drive().await.map(|_| ())
    }

    async fn quota(&self) -> Result<Option<Quota>> {
        Ok(drive_quota(&self.drive().await?))
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
}
