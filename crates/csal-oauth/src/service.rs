//! The `StorageModule` of an OAuth file-sync provider, written once: what
//! a provider supplies is its own ([`FileSyncService`]: building its client,
//! its cheapest authenticated call, and the five object operations); the
//! rest (validation, credential refresh, health with token warnings, the
//! registry factory with its token store) is the same for Dropbox,
//! OneDrive, Google Drive and Box and lives here.

use std::sync::Arc;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, ConfigSpec, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta,
    Result, StorageModule, WriteMeta, WriteReceipt,
};

use crate::{BearerSource, ConfigTokenStore, OAuthProviderSpec, TokenStore};

/// One OAuth file-sync provider: the service-specific half of its module.
#[async_trait]
pub trait FileSyncService: Send + Sync + Sized + 'static {
    /// Its `#[csal_core::config]` struct.
    type Config: ConfigSpec + Send;
    /// Where its bearer tokens come from.
    type Tokens: BearerSource + ?Sized;
    /// Its OAuth endpoints and rules (whether refresh-token expiries are saved).
    const OAUTH: &'static OAuthProviderSpec;
    /// What the service can do ([`OAuthModule`](crate::OAuthModule) reports these).
    const CAPABILITIES: Capabilities;

    /// Check `config` and build the client (no network); refreshed tokens
    /// go to `store`.
    fn new(config: Self::Config, store: Option<Arc<dyn TokenStore>>) -> Result<Self>;
    /// Its token source (refreshing through [`TokenManager`](crate::TokenManager) or a service account).
    fn tokens(&self) -> &Self::Tokens;
    /// The cheapest authenticated call (validate and health checks).
    async fn probe(&self) -> Result<()>;
    /// The account's storage quota, read by health checks after the probe
    /// (`None`: the service does not tell).
    async fn quota(&self) -> Result<Option<csal_http::Quota>> {
        Ok(None)
    }
    /// Upload `body` as a new file ([`StorageModule::write`](csal_core::StorageModule::write)).
    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt>;
    /// Download a file, or a range of it.
    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream>;
    /// Delete a file; a missing one is success.
    async fn delete(&self, object_id: &str) -> Result<()>;
    /// One page of the files under the request's folder.
    async fn list(&self, request: &ListRequest) -> Result<ListPage>;
    /// One file's metadata.
    async fn stat(&self, object_id: &str) -> Result<ObjectMeta>;
}

/// The storage module of a [`FileSyncService`].
pub struct OAuthModule<S>(S);

impl<S: FileSyncService> OAuthModule<S> {
    /// A module for `config`; refreshed OAuth tokens are saved to `store`.
    pub fn new(config: S::Config, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        S::new(config, store).map(OAuthModule)
    }

    /// The registry factory: parse the config, save refreshed tokens (and,
    /// for providers whose refresh tokens expire, their expiry) into the
    /// instance's stored config.
    pub fn build(ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
        let config = S::Config::parse(config)?;
        let store = if S::OAUTH.saves_refresh_expiry {
            ConfigTokenStore::for_instance_with_refresh_expiry(ctx)
        } else {
            ConfigTokenStore::for_instance(ctx)
        };
        Ok(Arc::new(Self::new(config, store)?))
    }

    /// Tokens obtained from the token endpoint so far (tests, admin UI).
    pub fn token_refreshes(&self) -> u64 {
        self.0.tokens().refresh_count()
    }

    /// The service itself.
    pub fn service(&self) -> &S {
        &self.0
    }
}

#[async_trait]
impl<S: FileSyncService> StorageModule for OAuthModule<S> {
    fn capabilities(&self) -> Capabilities {
        S::CAPABILITIES
    }

    async fn validate(&self) -> Result<()> {
        self.0.probe().await
    }

    async fn refresh_credentials(&self) -> Result<()> {
        self.0.tokens().force_refresh().await
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        self.0.write(body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        self.0.read(object_id, range).await
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        self.0.delete(object_id).await
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        self.0.list(request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        self.0.stat(object_id).await
    }

    /// Ok when the probe answers; degraded whenever the last token refresh
    /// failed or the refresh token expires within a week, or the account's
    /// quota is nearly used; offline for other failures (and before the
    /// instance is authorised). The quota's free bytes feed the capacity
    /// forecast.
    async fn health_check(&self) -> HealthReport {
        let report = crate::check_health(self.0.tokens(), self.0.probe()).await;
        if report.status == csal_core::HealthStatus::Offline {
            return report;
        }
        csal_http::with_quota(report, self.0.quota().await)
    }
}
