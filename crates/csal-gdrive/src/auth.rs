//! Where Drive access tokens come from: a user's refresh token
//! (`csal-oauth`), or a service-account key (yup-oauth2's JWT-bearer flow,
//! RFC 7523, "Using OAuth 2.0 for Server to Server Applications").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use csal_core::{ErrorKind, Result, SecretString, StorageError};
use csal_oauth::TokenManager;
use yup_oauth2::authenticator::DefaultAuthenticator;

const DRIVE_SCOPE: [&str; 1] = ["https://www.googleapis.com/auth/drive"];
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) enum Auth {
    User(Arc<TokenManager>),
    ServiceAccount(Box<ServiceAccount>),
}

pub(crate) struct ServiceAccount {
    /// Never shown: yup-oauth2's `Debug` of the key includes the private key.
    key: yup_oauth2::ServiceAccountKey,
    authenticator: tokio::sync::OnceCell<DefaultAuthenticator>,
    failure: Mutex<Option<String>>,
    fetches: AtomicU64,
}

impl ServiceAccount {
    /// Parse a service-account key JSON (no network here).
    pub fn new(json: &str) -> Result<Self> {
        let key = yup_oauth2::parse_service_account_key(json).map_err(|_| {
            StorageError::invalid_config(
                "field 'service_account_json': not a service-account key JSON (type, client_email, private_key, token_uri)",
            )
        })?;
        Ok(ServiceAccount {
            key,
            authenticator: tokio::sync::OnceCell::new(),
            failure: Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }

    async fn token(&self, force: bool) -> Result<SecretString> {
        let auth = self
            .authenticator
            .get_or_try_init(|| async {
                yup_oauth2::ServiceAccountAuthenticator::builder(self.key.clone()).build().await.map_err(|e| {
                    StorageError::invalid_config("field 'service_account_json': the key cannot be used").with_source(e)
                })
            })
            .await?;
        let outcome = if force {
            tokio::time::timeout(TOKEN_TIMEOUT, auth.force_refreshed_token(&DRIVE_SCOPE)).await
        } else {
            tokio::time::timeout(TOKEN_TIMEOUT, auth.token(&DRIVE_SCOPE)).await
        };
        let result = match outcome {
            Err(_) => Err(StorageError::timeout("the service-account token request timed out")),
            Ok(Err(e)) => Err(classify_yup(e)),
            Ok(Ok(token)) => match token.token() {
                Some(t) => {
                    self.fetches.fetch_add(1, Ordering::Relaxed);
                    Ok(SecretString::from(t.to_owned()))
                }
                None => Err(StorageError::transient("the token endpoint answered without an access token")),
            },
        };
        *self.failure.lock().expect("lock") =
            result.as_ref().err().map(|e| format!("service-account token failed: {}", e.message()));
        result
    }
}

fn classify_yup(e: yup_oauth2::Error) -> StorageError {
    use yup_oauth2::Error as Y;
    let (kind, msg) = match &e {
        Y::AuthError(_) => (
            ErrorKind::Auth,
            "the service-account key was refused (deleted, disabled or wrong project): create a new key and update service_account_json",
        ),
        Y::UserError(_) | Y::CredentialSourceError(_) => {
            (ErrorKind::InvalidConfig, "field 'service_account_json': the key cannot be used")
        }
        Y::HttpError(_) | Y::HttpClientError(_) | Y::LowLevelError(_) => {
            (ErrorKind::Transient, "cannot reach the Google token endpoint")
        }
        _ => (ErrorKind::Transient, "the Google token endpoint answered unexpectedly"),
    };
    StorageError::new(kind, msg).with_source(e)
}

impl Auth {
    pub async fn access_token(&self) -> Result<SecretString> {
        match self {
            Auth::User(t) => t.access_token().await,
            Auth::ServiceAccount(sa) => sa.token(false).await,
        }
    }

    pub async fn refresh_after_rejection(&self, rejected: &SecretString) -> Result<SecretString> {
        match self {
            Auth::User(t) => t.refresh_after_rejection(rejected).await,
            Auth::ServiceAccount(sa) => sa.token(true).await,
        }
    }

    pub async fn force_refresh(&self) -> Result<()> {
        match self {
            Auth::User(t) => t.force_refresh().await.map(|_| ()),
            Auth::ServiceAccount(sa) => sa.token(true).await.map(|_| ()),
        }
    }

    /// `Some(reason)` when the last token fetch failed.
    pub fn health(&self) -> Option<String> {
        match self {
            Auth::User(t) => t.health(),
            Auth::ServiceAccount(sa) => sa.failure.lock().expect("lock").clone(),
        }
    }

    /// False for a user-OAuth instance created before it was authorised.
    pub fn is_authorised(&self) -> bool {
        match self {
            Auth::User(t) => t.is_authorised(),
            Auth::ServiceAccount(_) => true,
        }
    }

    /// Tokens obtained from the token endpoint.
    pub fn refresh_count(&self) -> u64 {
        match self {
            Auth::User(t) => t.refresh_count(),
            Auth::ServiceAccount(sa) => sa.fetches.load(Ordering::Relaxed),
        }
    }
}

#[async_trait::async_trait]
impl csal_oauth::BearerSource for Auth {
    fn token_health(&self) -> Option<String> {
        Auth::health(self)
    }
    fn is_authorised(&self) -> bool {
        Auth::is_authorised(self)
    }
    fn refresh_count(&self) -> u64 {
        Auth::refresh_count(self)
    }
    async fn access_token(&self) -> Result<SecretString> {
        Auth::access_token(self).await
    }
    async fn refresh_after_rejection(&self, rejected: &SecretString) -> Result<SecretString> {
        Auth::refresh_after_rejection(self, rejected).await
    }
    async fn force_refresh(&self) -> Result<()> {
        Auth::force_refresh(self).await
    }
}
