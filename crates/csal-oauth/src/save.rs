//! Saving refreshed tokens so a restart does not lose them.
//!
//! A provider whose refresh tokens are single use (Box) has, after a
//! refresh, exactly one valid refresh token: the new one. Losing it means
//! re-authorising by hand. So a save is retried a few times at once; if it
//! still fails and the refresh token rotated, the new tokens stay in use
//! from memory, the instance's health says so (degraded, with the reason),
//! and a background task keeps trying to save them, with a growing pause,
//! until it succeeds or a newer refresh has saved newer tokens.

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use crate::store::TokenStore;
use crate::tokens::TokenSet;

/// How saving is retried.
#[derive(Debug, Clone, Copy)]
pub struct SaveRetry {
    /// Attempts before the refreshing call returns (at least 1).
    pub attempts: u32,
    /// Pause after the first failed attempt; doubles after each.
    pub first_pause: Duration,
    /// First pause of the background retries; doubles up to `max_pause`.
    pub background_pause: Duration,
    /// Longest pause between background retries.
    pub max_pause: Duration,
}

impl Default for SaveRetry {
    fn default() -> Self {
        SaveRetry {
            attempts: 3,
            first_pause: Duration::from_millis(100),
            background_pause: Duration::from_secs(5),
            max_pause: Duration::from_secs(300),
        }
    }
}

/// Tokens in use that are not saved yet.
struct Pending {
    tokens: TokenSet,
    generation: u64,
}

#[derive(Default)]
struct Ledger {
    /// Bumped for every set of tokens handed to [`TokenSaver::save`].
    generation: u64,
    pending: Option<Pending>,
}

/// Saves one manager's tokens: at once with retries, then in the background.
pub(crate) struct TokenSaver {
    store: Arc<dyn TokenStore>,
    retry: SaveRetry,
    /// Held across every save so an older set never overwrites a newer one.
    ledger: Arc<tokio::sync::Mutex<Ledger>>,
    /// The reason saving is behind, for health checks (sync read).
    behind: Arc<StdMutex<Option<String>>>,
}

impl TokenSaver {
    pub(crate) fn new(store: Arc<dyn TokenStore>, retry: SaveRetry) -> Self {
        TokenSaver { store, retry, ledger: Default::default(), behind: Default::default() }
    }

    pub(crate) fn with_retry(mut self, retry: SaveRetry) -> Self {
        self.retry = retry;
        self
    }

    /// Why the tokens in use are not saved (`None`: they are).
    pub(crate) fn behind(&self) -> Option<String> {
        self.behind.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Save `tokens` (a refresh just produced them). `rotated`: the refresh
    /// token changed, so the stored one may no longer work.
    pub(crate) async fn save(&self, tokens: &TokenSet, rotated: bool) {
        let mut ledger = self.ledger.lock().await;
        ledger.generation += 1;
        let generation = ledger.generation;
        let mut pause = self.retry.first_pause;
        let mut failure = String::new();
        for attempt in 1..=self.retry.attempts.max(1) {
            match self.store.save(tokens).await {
                Ok(()) => {
                    ledger.pending = None;
                    self.set_behind(None);
                    return;
                }
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "refreshed OAuth tokens could not be saved");
                    failure = e.message().to_owned();
                }
            }
            if attempt < self.retry.attempts {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
        }
        // A pending set holds a refresh token the store lacks; this newer
        // set carries it (or its successor), so it replaces the pending one.
        if !rotated && ledger.pending.is_none() {
            return;
        }
        ledger.pending = Some(Pending { tokens: tokens.clone(), generation });
        let instance = self.store.instance_name().map(|n| format!(" of instance '{n}'")).unwrap_or_default();
        self.set_behind(Some(format!(
            "the new OAuth refresh token{instance} could not be saved ({failure}); it is kept in memory and saving \
             is retried in the background: if this process stops first, authorise the instance again"
        )));
        tracing::error!(instance = ?self.store.instance_name(), "a rotated OAuth refresh token is only in memory; retrying the save in the background");
        tokio::spawn(background(self.store.clone(), self.ledger.clone(), self.behind.clone(), generation, self.retry));
    }

    fn set_behind(&self, reason: Option<String>) {
        *self.behind.lock().unwrap_or_else(|p| p.into_inner()) = reason;
    }
}

/// Retry saving generation `generation` until it is saved or superseded.
async fn background(
    store: Arc<dyn TokenStore>,
    ledger: Arc<tokio::sync::Mutex<Ledger>>,
    behind: Arc<StdMutex<Option<String>>>,
    generation: u64,
    retry: SaveRetry,
) {
    let mut pause = retry.background_pause;
    loop {
        tokio::time::sleep(pause).await;
        pause = pause.saturating_mul(2).min(retry.max_pause);
        let mut ledger = ledger.lock().await;
        let Some(pending) = ledger.pending.as_ref().filter(|p| p.generation == generation) else {
            return; // saved, or a newer refresh took over
        };
        match store.save(&pending.tokens).await {
            Ok(()) => {
                ledger.pending = None;
                *behind.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::info!(instance = ?store.instance_name(), "the rotated OAuth refresh token is saved now");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "saving the rotated OAuth refresh token failed again"),
        }
    }
}
