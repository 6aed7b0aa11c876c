//! Token refresh against a real (loopback) token endpoint: the fake Dropbox's.

use std::sync::Arc;

use csal_core::{ErrorKind, ExposeSecret, SecretString};
use csal_fakes::dropbox::{APP_KEY, APP_SECRET, FakeDropbox, REFRESH_TOKEN};
use csal_oauth::{MemoryTokenStore, OAuthSettings, TokenManager, TokenStore};

fn settings(fake: &FakeDropbox, refresh: &str) -> OAuthSettings {
    OAuthSettings {
        token_url: fake.token_url(),
        client_id: APP_KEY.into(),
        client_secret: Some(APP_SECRET.into()),
        refresh_token: Some(refresh.into()),
        access_token: None,
        expires_at: None,
        scope: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_use_refreshes_once_and_persists() {
    let fake = FakeDropbox::start().await;
    let store = Arc::new(MemoryTokenStore::new());
    let tokens = Arc::new(
        TokenManager::new(settings(&fake, REFRESH_TOKEN), Some(store.clone() as Arc<dyn TokenStore>)).unwrap(),
    );
    let tasks = (0..32).map(|_| {
        let tokens = tokens.clone();
        tokio::spawn(async move { tokens.access_token().await.map(|t| t.expose_secret().to_owned()) })
    });
    let got: Vec<String> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert!(got.iter().all(|t| t == &got[0]), "callers saw different tokens");
    assert_eq!(fake.token_requests(), 1);
    assert_eq!(store.save_count(), 1);
    assert_eq!(store.latest().unwrap().access_token.expose_secret(), got[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_rejection_does_not_refresh_again() {
    let fake = FakeDropbox::start().await;
    let tokens = TokenManager::new(settings(&fake, REFRESH_TOKEN), None).unwrap();
    let first = tokens.access_token().await.unwrap();
    let second = tokens.refresh_after_rejection(&first).await.unwrap();
    assert_ne!(first.expose_secret(), second.expose_secret());
    // Another caller still holding `first` reports it: no new refresh.
    let third = tokens.refresh_after_rejection(&first).await.unwrap();
    assert_eq!(third.expose_secret(), second.expose_secret());
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_is_auth_asking_to_reauthorise_and_sticks() {
    let fake = FakeDropbox::start().await;
    let tokens = TokenManager::new(settings(&fake, "revoked-refresh-token"), None).unwrap();
    let err = tokens.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.message().contains("re-authorise"), "{err}");
    assert!(!format!("{err:?}").contains("revoked-refresh-token"));
    assert!(tokens.health().unwrap().contains("refresh failed"));
    // Later calls fail at once without hammering the endpoint.
    assert_eq!(tokens.access_token().await.unwrap_err().kind(), ErrorKind::Auth);
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_token_endpoint_is_transient() {
    let mut s = settings(&FakeDropbox::start().await, REFRESH_TOKEN);
    s.token_url = "http://127.0.0.1:9/oauth2/token".into();
    s.access_token = Some(SecretString::from("expired"));
    s.expires_at = Some(std::time::SystemTime::now());
    let tokens = TokenManager::new(s, None).unwrap();
    let err = tokens.access_token().await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(tokens.health().is_some());
}

// ------------------------------------------------------ saving rotated tokens

/// A store that fails its first `failures` saves (the catalog unreachable),
/// then works; `saved` is notified on each success.
struct FlakyStore {
    failures: std::sync::atomic::AtomicU32,
    inner: MemoryTokenStore,
    saved: tokio::sync::Notify,
}

impl FlakyStore {
    fn new(failures: u32) -> Arc<Self> {
        Arc::new(FlakyStore {
            failures: failures.into(),
            inner: MemoryTokenStore::new(),
            saved: tokio::sync::Notify::new(),
        })
    }
}

#[async_trait::async_trait]
impl TokenStore for FlakyStore {
    async fn save(&self, tokens: &csal_oauth::TokenSet) -> csal_core::Result<()> {
        let left = self.failures.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(csal_core::StorageError::transient("the catalog is unreachable"));
        }
        self.inner.save(tokens).await?;
        self.saved.notify_one();
        Ok(())
    }
    fn instance_name(&self) -> Option<&str> {
        Some("box-archive")
    }
}

fn quick_retry() -> csal_oauth::SaveRetry {
    csal_oauth::SaveRetry {
        attempts: 3,
        first_pause: std::time::Duration::from_millis(10),
        background_pause: std::time::Duration::from_millis(50),
        max_pause: std::time::Duration::from_millis(200),
    }
}

fn box_settings(fake: &csal_fakes::boxapi::FakeBox) -> OAuthSettings {
    use csal_fakes::boxapi::{CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN};
    OAuthSettings {
        token_url: fake.token_url(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        refresh_token: Some(REFRESH_TOKEN.into()),
        access_token: None,
        expires_at: None,
        scope: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_that_fails_briefly_is_retried_before_the_call_returns() {
    let fake = csal_fakes::boxapi::FakeBox::start().await;
    let store = FlakyStore::new(2);
    let tokens = TokenManager::new(box_settings(&fake), Some(store.clone() as Arc<dyn TokenStore>))
        .unwrap()
        .with_save_retry(quick_retry());
    let token = tokens.access_token().await.unwrap();
    assert_eq!(store.inner.save_count(), 1, "the rotated refresh token was not saved");
    assert_eq!(store.inner.latest().unwrap().access_token.expose_secret(), token.expose_secret());
    assert_eq!(tokens.health(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_that_cannot_be_saved_degrades_health_and_is_saved_later() {
    let fake = csal_fakes::boxapi::FakeBox::start().await;
    // More failures than the foreground attempts: the background takes over.
    let store = FlakyStore::new(5);
    let tokens = TokenManager::new(box_settings(&fake), Some(store.clone() as Arc<dyn TokenStore>))
        .unwrap()
        .with_save_retry(quick_retry());
    let token = tokens.access_token().await.expect("the call still gets its token");
    assert_eq!(store.inner.save_count(), 0);
    let health = tokens.health().expect("degraded while the only valid refresh token is unsaved");
    assert!(health.contains("could not be saved") && health.contains("box-archive"), "{health}");
    // The single-use refresh token was spent: the new one exists only in memory.
    assert!(!fake.refresh_token_valid(csal_fakes::boxapi::REFRESH_TOKEN));
    // Still usable meanwhile.
    assert_eq!(tokens.access_token().await.unwrap().expose_secret(), token.expose_secret());
    tokio::time::timeout(std::time::Duration::from_secs(20), store.saved.notified())
        .await
        .expect("the background retry saved the tokens");
    let saved = store.inner.latest().unwrap();
    assert!(fake.refresh_token_valid(saved.refresh_token.as_ref().unwrap().expose_secret()));
    // `saved` fires inside the store's save; the manager clears its health
    // just after that save returns, on the background task's thread (this
    // test once read the health in between: CI flake of 2026-12-05).
    let cleared = async {
        while tokens.health().is_some() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), cleared).await.expect("healthy again once saved");
}
