//! Where refreshed tokens go so that a restart does not lose them.

use std::sync::Mutex;

use async_trait::async_trait;
use csal_core::Result;

use crate::token::TokenSet;

/// Persists one instance's tokens after every refresh.
///
/// Called while the refresh lock is held, so saves are never concurrent for
/// one [`crate::TokenManager`]. A failed save is logged and the new token is
/// still used (the old refresh token usually stays valid, and failing the
/// caller's upload would not make the store work again).
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    async fn save(&self, tokens: &TokenSet) -> Result<()>;
}

/// Keeps the last saved tokens in memory (tests, and instances whose
/// config is not stored in a catalog).
#[derive(Default)]
pub struct MemoryTokenStore {
    saved: Mutex<Vec<TokenSet>>,
}

impl MemoryTokenStore {
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
