//! Where refreshed tokens go so that a restart does not lose them.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use csal_core::Result;

use crate::tokens::TokenSet;

/// Persists one instance's tokens after every refresh.
///
/// Called while the refresh lock is held, so saves are never concurrent for
/// one [`crate::TokenManager`]. A failed save is retried a few times; if it
/// still fails the new token is used from memory anyway (failing the
/// caller's upload would not make the store work again), and when the
/// refresh token rotated the manager's health turns degraded and the save
/// is retried in the background (see [`crate::SaveRetry`]).
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Keep `tokens` (called after every refresh); an error is retried per [`SaveRetry`](crate::SaveRetry).
    async fn save(&self, tokens: &TokenSet) -> Result<()>;

    /// The instance these tokens belong to, for error messages.
    fn instance_name(&self) -> Option<&str> {
        None
    }
}

/// Keeps the last saved tokens in memory (tests, and instances whose
/// config is not stored in a catalog).
#[derive(Default)]
pub struct MemoryTokenStore {
    saved: Mutex<Vec<TokenSet>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// The most recently saved tokens.
    pub fn latest(&self) -> Option<TokenSet> {
        self.saved.lock().expect("lock").last().cloned()
    }
    /// How many times tokens were saved.
    pub fn save_count(&self) -> usize {
        self.saved.lock().expect("lock").len()
    }
}

impl std::fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTokenStore").field("saves", &self.save_count()).finish()
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn save(&self, tokens: &TokenSet) -> Result<()> {
        self.saved.lock().expect("lock").push(tokens.clone());
        Ok(())
    }
}

/// Saves refreshed tokens into the instance's own config through the
/// router's [`csal_core::ConfigUpdates`] (the catalog encrypts them), under
/// the config keys `access_token`, `refresh_token` and, for providers whose
/// config has it, [`REFRESH_TOKEN_EXPIRES_AT`] (RFC 3339).
#[derive(Debug)]
pub struct ConfigTokenStore {
    updates: csal_core::ConfigUpdates,
    save_refresh_expiry: bool,
    instance: Option<String>,
}

/// Config key of a refresh token's expiry (RFC 3339), for providers whose
/// refresh tokens expire (Box, Microsoft).
pub const REFRESH_TOKEN_EXPIRES_AT: &str = "refresh_token_expires_at";

impl ConfigTokenStore {
    /// A store saving into the instance's catalog row through `updates`.
    pub fn new(updates: csal_core::ConfigUpdates) -> Self {
        ConfigTokenStore { updates, save_refresh_expiry: false, instance: None }
    }

    /// Also save the refresh token's expiry (the provider's config spec must
    /// have a [`REFRESH_TOKEN_EXPIRES_AT`] field).
    pub fn with_refresh_expiry(mut self) -> Self {
        self.save_refresh_expiry = true;
        self
    }

    /// Name the instance in error messages (`instance 'NAME' is not authorised yet`).
    pub fn with_instance_name(mut self, name: impl Into<String>) -> Self {
        self.instance = Some(name.into());
        self
    }

    /// The store for an instance whose config lives in a catalog, if any:
    /// what a provider factory passes to its token manager.
    pub fn for_instance(ctx: &csal_core::InstanceContext) -> Option<Arc<dyn TokenStore>> {
        ctx.config_updates
            .clone()
            .map(|u| Arc::new(ConfigTokenStore::new(u).with_instance_name(&ctx.name)) as Arc<dyn TokenStore>)
    }

    /// [`ConfigTokenStore::for_instance`] that also saves the refresh token's expiry.
    pub fn for_instance_with_refresh_expiry(ctx: &csal_core::InstanceContext) -> Option<Arc<dyn TokenStore>> {
        ctx.config_updates.clone().map(|u| {
            Arc::new(ConfigTokenStore::new(u).with_refresh_expiry().with_instance_name(&ctx.name))
                as Arc<dyn TokenStore>
        })
    }
}

#[async_trait]
impl TokenStore for ConfigTokenStore {
    async fn save(&self, tokens: &TokenSet) -> Result<()> {
        use csal_core::ExposeSecret;
        let mut changes = serde_json::Map::new();
        changes.insert("access_token".into(), tokens.access_token.expose_secret().into());
        if let Some(refresh) = &tokens.refresh_token {
            changes.insert("refresh_token".into(), refresh.expose_secret().into());
        }
        if let (true, Some(at)) = (self.save_refresh_expiry, tokens.refresh_token_expires_at) {
            changes.insert(REFRESH_TOKEN_EXPIRES_AT.into(), humantime::format_rfc3339_seconds(at).to_string().into());
        }
        self.updates.save(changes).await
    }

    fn instance_name(&self) -> Option<&str> {
        self.instance.as_deref()
    }
}
