//! The token manager: refresh-token grant (RFC 6749 section 6), refreshed
//! ahead of expiry and after a 401, one refresh at a time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime};

use csal_core::{ErrorKind, ExposeSecret, Result, SecretString, StorageError};

use crate::endpoint;
use crate::save::{SaveRetry, TokenSaver};
use crate::store::TokenStore;
use crate::tokens::TokenSet;

/// Refresh this long before the access token expires.
const DEFAULT_SKEW: Duration = Duration::from_secs(120);

/// Health turns degraded this long before the refresh token expires, so an
/// admin can re-authorise before recordings stop.
pub const REFRESH_TOKEN_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

/// What an instance's config gives the token manager.
#[derive(Clone)]
pub struct OAuthSettings {
    /// The provider's token endpoint (configurable so local fakes can serve it).
    pub token_url: String,
    /// OAuth client id (Dropbox: app key).
    pub client_id: String,
    /// OAuth client secret (Dropbox: app secret); `None` for PKCE apps.
    pub client_secret: Option<SecretString>,
    /// Long-lived refresh token; `None` means the access token is all we have.
    pub refresh_token: Option<SecretString>,
    /// A current access token, if one is known (saves a refresh at start).
    pub access_token: Option<SecretString>,
    /// When `access_token` expires, if known.
    pub expires_at: Option<SystemTime>,
    /// `scope` sent with refreshes (Microsoft identity platform wants it;
    /// `None` sends none, as Dropbox expects).
    pub scope: Option<String>,
}

impl std::fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| csal_core::secret::MASK))
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| csal_core::secret::MASK))
            .field("access_token", &self.access_token.as_ref().map(|_| csal_core::secret::MASK))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}

/// How the manager gets a new access token.
enum Grant {
    /// RFC 6749 section 6: `grant_type=refresh_token`.
    RefreshToken,
    /// RFC 6749 section 4.4: `grant_type=client_credentials` plus
    /// provider-specific form fields (Box: `box_subject_type`,
    /// `box_subject_id`). No refresh token: a new token is asked for when
    /// the old one expires or is refused.
    ClientCredentials(Vec<(String, String)>),
    /// A GET to a local metadata service that hands out the host's own
    /// identity's tokens (Azure managed identity), with its headers
    /// (`Metadata: true`). No secret and no refresh token either.
    MetadataService(Vec<(String, String)>),
}

struct State {
    access_token: Option<SecretString>,
    refresh_token: Option<SecretString>,
    expires_at: Option<SystemTime>,
    /// Set when the token endpoint refused the refresh token: every later
    /// call fails at once with this error until the config is replaced.
    revoked: Option<String>,
}

/// One instance's OAuth tokens. Cheap to share behind an `Arc`.
pub struct TokenManager {
    token_url: String,
    client_id: String,
    client_secret: Option<SecretString>,
    scope: Option<String>,
    grant: Grant,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
    saver: Option<TokenSaver>,
    skew: Duration,
    /// How long a newly issued refresh token lasts, when the provider has a
    /// fixed policy and does not say in the token response.
    refresh_token_lifetime: Option<Duration>,
    /// When the refresh token expires. Written under the refresh lock, kept
    /// in a plain mutex so health checks read it without the async lock.
    refresh_token_expires_at: StdMutex<Option<SystemTime>>,
    refreshes: AtomicU64,
    /// False when built without any token (not authorised yet).
    authorised: bool,
    /// Last refresh failure, for health checks (no secret in it).
    last_failure: StdMutex<Option<String>>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("refreshes", &self.refresh_count())
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Seconds; Azure's managed identity endpoint sends it as a string.
    #[serde(default, deserialize_with = "seconds")]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Non-standard but sent by some providers (seconds).
    #[serde(default)]
    refresh_token_expires_in: Option<u64>,
}

impl TokenManager {
    /// A manager for `settings`, saving refreshed tokens to `store`.
    ///
    /// Without any token (an instance created before it was authorised)
    /// the manager is built, and every call fails with an Auth error telling
    /// the admin to run `csal module authorize NAME`.
    pub fn new(settings: OAuthSettings, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        let not_authorised = (settings.access_token.is_none() && settings.refresh_token.is_none()).then(|| match store
            .as_ref()
            .and_then(|s| s.instance_name())
        {
            Some(name) => format!(
                "instance '{name}' is not authorised yet: run `csal module authorize {name}` \
                     or use Authorize in the admin UI"
            ),
            None => "this instance is not authorised yet: run `csal module authorize NAME` \
                         or use Authorize in the admin UI"
                .to_owned(),
        });
        if settings.refresh_token.is_some() && settings.client_id.trim().is_empty() {
            return Err(StorageError::invalid_config("field 'client_id': required to refresh tokens"));
        }
        let http = endpoint::client(None)?;
        Ok(TokenManager {
            token_url: settings.token_url,
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            scope: settings.scope,
            grant: Grant::RefreshToken,
            http,
            state: tokio::sync::Mutex::new(State {
                access_token: settings.access_token,
                refresh_token: settings.refresh_token,
                expires_at: settings.expires_at,
                revoked: not_authorised.clone(),
            }),
            saver: store.map(|s| TokenSaver::new(s, SaveRetry::default())),
            skew: DEFAULT_SKEW,
            refresh_token_lifetime: None,
            refresh_token_expires_at: StdMutex::new(None),
            refreshes: AtomicU64::new(0),
            authorised: not_authorised.is_none(),
            last_failure: StdMutex::new(not_authorised),
        })
    }

    /// A manager that gets its tokens with the client-credentials grant
    /// (server-to-server apps, e.g. Box "Client Credentials Grant"):
    /// `client_id` + `client_secret` + the provider's `extra` form fields.
    /// Nothing is persisted (there is no refresh token to keep).
    pub fn client_credentials(
        token_url: String,
        client_id: String,
        client_secret: SecretString,
        extra: Vec<(String, String)>,
    ) -> Result<Self> {
        if client_id.trim().is_empty() {
            return Err(StorageError::invalid_config("field 'client_id': required for the client-credentials grant"));
        }
        TokenManager::without_refresh_token(token_url, client_id, Some(client_secret), Grant::ClientCredentials(extra))
    }

    /// A manager for a grant that asks for a new access token each time
    /// (no refresh token to keep or send).
    fn without_refresh_token(
        token_url: String,
        client_id: String,
        client_secret: Option<SecretString>,
        grant: Grant,
    ) -> Result<Self> {
        let mut manager = TokenManager::new(
            OAuthSettings {
                token_url,
                client_id,
                client_secret,
                // Placeholder so `new` counts the manager as authorised; never sent.
                refresh_token: Some(SecretString::from(String::new())),
                access_token: None,
                expires_at: None,
                scope: None,
            },
            None,
        )?;
        manager.grant = grant;
        manager.state.get_mut().refresh_token = None;
        Ok(manager)
    }

    /// Trust the instance's `ca_file` for the token endpoint too (a token
    /// service behind the same private CA as the API).
    pub fn with_ca_file(mut self, ca_file: Option<&csal_core::tls::CaFile>) -> Result<Self> {
        if ca_file.is_some() {
            self.http = endpoint::client(ca_file)?;
        }
        Ok(self)
    }

    /// A manager that gets its tokens by GET from a metadata service on the
    /// host (`token_url` with its query, e.g. Azure IMDS's
    /// `/metadata/identity/oauth2/token?api-version=...&resource=...`),
    /// sending `headers`. Nothing is persisted.
    pub fn metadata_service(token_url: String, headers: Vec<(String, String)>) -> Result<Self> {
        // `new` wants a client id beside a refresh token; the service needs none.
        let mut manager =
            TokenManager::without_refresh_token(token_url, "-".into(), None, Grant::MetadataService(headers))?;
        manager.client_id = String::new();
        Ok(manager)
    }

    /// How saving refreshed tokens is retried (see [`SaveRetry`]).
    pub fn with_save_retry(mut self, retry: SaveRetry) -> Self {
        self.saver = self.saver.map(|s| s.with_retry(retry));
        self
    }

    /// Refresh this long before expiry (default two minutes).
    pub fn with_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// When the configured refresh token expires (from the instance config),
    /// and how long the provider's refresh tokens last once rotated.
    pub fn with_refresh_token_expiry(mut self, expires_at: Option<SystemTime>, lifetime: Option<Duration>) -> Self {
        *self.refresh_token_expires_at.get_mut().expect("lock") = expires_at;
        self.refresh_token_lifetime = lifetime;
        self
    }

    /// False for an instance created before it was authorised (no token
    /// at all): health reports it offline rather than degraded.
    pub fn is_authorised(&self) -> bool {
        self.authorised
    }

    /// How many refreshes reached the token endpoint and succeeded.
    pub fn refresh_count(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// `Some(reason)` when the last refresh failed or the refresh token
    /// expires within [`REFRESH_TOKEN_WARNING`]: health checks report the
    /// instance as degraded with this reason (no secret in it).
    pub fn health(&self) -> Option<String> {
        if let Some(unsaved) = self.saver.as_ref().and_then(TokenSaver::behind) {
            return Some(unsaved);
        }
        if let Some(failure) = self.last_failure.lock().expect("lock").clone() {
            return Some(failure);
        }
        let expires_at = (*self.refresh_token_expires_at.lock().expect("lock"))?;
        let left = expires_at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        (left < REFRESH_TOKEN_WARNING).then(|| {
            let when = humantime::format_rfc3339_seconds(expires_at);
            if left.is_zero() {
                format!("the OAuth refresh token expired at {when}: re-authorise this instance")
            } else {
                format!(
                    "the OAuth refresh token expires at {when} (in {} h): re-authorise this instance before then",
                    left.as_secs() / 3600
                )
            }
        })
    }

    /// A bearer token valid for at least the skew, refreshed first if needed.
    pub async fn access_token(&self) -> Result<SecretString> {
        let mut state = self.state.lock().await;
        if let Some(why) = &state.revoked {
            return Err(StorageError::auth(why.clone()));
        }
        let fresh = match (&state.access_token, state.expires_at) {
            (Some(_), None) => true,
            (Some(_), Some(at)) => at > SystemTime::now() + self.skew,
            (None, _) => false,
        };
        if fresh {
            return Ok(state.access_token.clone().expect("checked"));
        }
        self.refresh_locked(&mut state).await
    }

    /// The provider refused `rejected` (401, expired/invalid token): refresh
    /// unless another caller already did, and return the token to retry with.
    pub async fn refresh_after_rejection(&self, rejected: &SecretString) -> Result<SecretString> {
        let mut state = self.state.lock().await;
        if let Some(why) = &state.revoked {
            return Err(StorageError::auth(why.clone()));
        }
        if let Some(current) = &state.access_token
            && current.expose_secret() != rejected.expose_secret()
        {
            return Ok(current.clone());
        }
        self.refresh_locked(&mut state).await
    }

    /// Refresh now, whatever the expiry (the provider's `refresh_credentials`).
    pub async fn force_refresh(&self) -> Result<SecretString> {
        let mut state = self.state.lock().await;
        if let (None, None, Some(why)) = (&state.access_token, &state.refresh_token, &state.revoked) {
            return Err(StorageError::auth(why.clone()));
        }
        self.refresh_locked(&mut state).await
    }

    async fn refresh_locked(&self, state: &mut State) -> Result<SecretString> {
        match &self.grant {
            Grant::ClientCredentials(extra) => return self.client_credentials_locked(state, extra).await,
            Grant::MetadataService(headers) => return self.metadata_service_locked(state, headers).await,
            Grant::RefreshToken => {}
        }
        let Some(refresh_token) = state.refresh_token.clone() else {
            let why = "the access token expired or was refused and no refresh token is configured: \
                       re-authorise the app and set refresh_token";
            self.note_failure(why);
            return Err(StorageError::auth(why));
        };
        match self.call_token_endpoint(&refresh_token).await {
            Ok(resp) => {
                let now = SystemTime::now();
                let rotated = resp.refresh_token.is_some();
                let refresh_token_expires_at = match resp.refresh_token_expires_in {
                    Some(secs) => Some(now + Duration::from_secs(secs)),
                    None if rotated => self.refresh_token_lifetime.map(|l| now + l),
                    None => *self.refresh_token_expires_at.lock().expect("lock"),
                };
                let tokens = TokenSet {
                    access_token: SecretString::from(resp.access_token),
                    refresh_token: Some(resp.refresh_token.map(SecretString::from).unwrap_or(refresh_token)),
                    expires_at: resp.expires_in.map(|s| now + Duration::from_secs(s)),
                    refresh_token_expires_at,
                };
                *self.refresh_token_expires_at.lock().expect("lock") = refresh_token_expires_at;
                state.access_token = Some(tokens.access_token.clone());
                state.refresh_token = tokens.refresh_token.clone();
                state.expires_at = tokens.expires_at;
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                *self.last_failure.lock().expect("lock") = None;
                if let Some(saver) = &self.saver {
                    saver.save(&tokens, rotated).await;
                }
                tracing::debug!(token_url = %self.token_url, "OAuth access token refreshed");
                Ok(tokens.access_token)
            }
            Err(e) => {
                self.note_failure(e.message());
                if e.kind() == ErrorKind::Auth {
                    state.revoked = Some(e.message().to_owned());
                    state.access_token = None;
                }
                Err(e)
            }
        }
    }

    async fn client_credentials_locked(&self, state: &mut State, extra: &[(String, String)]) -> Result<SecretString> {
        let secret = self.client_secret.as_ref().map(|s| s.expose_secret()).unwrap_or_default();
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", "client_credentials"), ("client_id", &self.client_id), ("client_secret", secret)];
        form.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match self.post_token_form(&form).await {
            Ok(resp) => Ok(self.keep_new_token(state, resp, "client credentials")),
            Err(e) => {
                let e = if e.kind() == ErrorKind::Auth {
                    StorageError::auth(
                        "the client-credentials grant was refused: check client_id, client_secret and the \
                         subject (user or enterprise id), and that the app is authorised by the account admin",
                    )
                    .with_source(e)
                } else {
                    e
                };
                self.note_failure(e.message());
                Err(e)
            }
        }
    }

    async fn metadata_service_locked(&self, state: &mut State, headers: &[(String, String)]) -> Result<SecretString> {
        let answer = endpoint::get(&self.http, &self.token_url, headers).await?;
        match self.token_answer(answer) {
            Ok(resp) => Ok(self.keep_new_token(state, resp, "metadata service")),
            Err(e) => {
                let e = if e.kind() == ErrorKind::Auth {
                    StorageError::auth(
                        "the metadata service refused a token: check that this host has the managed identity \
                         (and client_id, if set, names one assigned to it)",
                    )
                    .with_source(e)
                } else {
                    e
                };
                self.note_failure(e.message());
                Err(e)
            }
        }
    }

    /// A token obtained without a refresh token (client credentials, metadata service).
    fn keep_new_token(&self, state: &mut State, resp: TokenResponse, how: &str) -> SecretString {
        let token = SecretString::from(resp.access_token);
        state.access_token = Some(token.clone());
        state.expires_at = resp.expires_in.map(|s| SystemTime::now() + Duration::from_secs(s));
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        *self.last_failure.lock().expect("lock") = None;
        tracing::debug!(token_url = %self.token_url, how, "OAuth access token obtained");
        token
    }

    fn note_failure(&self, why: &str) {
        *self.last_failure.lock().expect("lock") = Some(format!("OAuth token refresh failed: {why}"));
    }

    async fn call_token_endpoint(&self, refresh_token: &SecretString) -> Result<TokenResponse> {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
            ("client_id", &self.client_id),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose_secret()));
        }
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        self.post_token_form(&form).await
    }

    async fn post_token_form(&self, form: &[(&str, &str)]) -> Result<TokenResponse> {
        let answer = endpoint::post_form(&self.http, &self.token_url, form).await?;
        self.token_answer(answer)
    }

    /// A token endpoint's answer: the token, or the classified refusal.
    fn token_answer(&self, answer: std::result::Result<bytes::Bytes, csal_http::ErrorAnswer>) -> Result<TokenResponse> {
        match answer {
            Ok(body) => serde_json::from_slice::<TokenResponse>(&body).map_err(|e| {
                StorageError::transient("the OAuth token endpoint answered without an access_token").with_source(e)
            }),
            Err(answer) => {
                let error = endpoint::error_code(&answer);
                Err(classify_token_error(answer.status.as_u16(), &error).with_retry_after(answer.retry_after()))
            }
        }
    }
}

/// An OAuth provider's health from its token health (`token_health`:
/// [`TokenManager::health`]), whether it was ever authorised, and the outcome
/// of its cheapest authenticated call (`probe`, which took `latency`):
/// not authorised yet is offline with that one message; a token warning
/// (refresh failed, refresh token expiring) is degraded; otherwise the probe
/// decides.
pub fn health_report(
    token_health: Option<String>,
    authorised: bool,
    probe: Result<()>,
    latency: Duration,
) -> csal_core::HealthReport {
    use csal_core::HealthReport;
    match (token_health, probe) {
        (_, Err(e)) if !authorised => HealthReport::offline(&e),
        (Some(reason), _) if !authorised => HealthReport::offline(&StorageError::auth(reason)),
        (Some(reason), Ok(())) => HealthReport::degraded(Some(latency), reason),
        (Some(reason), Err(e)) => HealthReport::degraded(None, format!("{reason}; {e}")),
        (None, Ok(())) => HealthReport::ok(latency),
        (None, Err(e)) => HealthReport::offline(&e),
    }
}

/// Parse the optional `refresh_token_expires_at` config value (RFC 3339),
/// naming the field in the error.
pub fn parse_refresh_token_expiry(value: Option<&str>) -> Result<Option<SystemTime>> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            humantime::parse_rfc3339_weak(v.trim()).map_err(|_| {
                StorageError::invalid_config(format!(
                    "field '{}': '{v}' is not an RFC 3339 time like 2026-12-31T23:59:59Z",
                    crate::REFRESH_TOKEN_EXPIRES_AT
                ))
            })
        })
        .transpose()
}

/// RFC 6749 section 5.2 error codes (plus status) to an error kind.
/// `expires_in` as a JSON number or a string of digits.
fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<u64>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(u64),
        Text(String),
    }
    match <Option<Seconds> as serde::Deserialize>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Seconds::Number(n)) => Ok(Some(n)),
        Some(Seconds::Text(t)) => t.trim().parse().map(Some).map_err(serde::de::Error::custom),
    }
}

fn classify_token_error(status: u16, error: &str) -> StorageError {
    match (status, error) {
        (_, "invalid_grant") => StorageError::auth(
            "the refresh token was refused (invalid_grant: revoked, expired or already used): \
             re-authorise the app and store the new refresh token in this instance's config",
        ),
        (_, "invalid_client" | "unauthorized_client") => StorageError::auth(format!(
            "the OAuth client was refused ({error}): check client_id and client_secret, then re-authorise"
        )),
        (429, _) => StorageError::new(ErrorKind::RateLimited, "the OAuth token endpoint is rate limiting"),
        (500..=599, _) => StorageError::transient(format!("the OAuth token endpoint failed with HTTP {status}")),
        (400 | 401 | 403, _) => StorageError::auth(format!(
            "the OAuth token endpoint refused the refresh (HTTP {status}{}): re-authorise the app",
            if error.is_empty() { String::new() } else { format!(", {error}") }
        )),
        _ => StorageError::permanent(format!("the OAuth token endpoint answered HTTP {status}")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn health_of_an_unauthorised_instance_is_offline_with_one_message() {
        use csal_core::HealthStatus;
        let why = "instance 'x' is not authorised yet: run `csal module authorize x`";
        let ms = Duration::from_millis(3);
        let r = health_report(Some(why.into()), false, Err(StorageError::auth(why)), ms);
        assert_eq!(r.status, HealthStatus::Offline);
        assert_eq!(r.last_error.as_deref().unwrap().matches("not authorised").count(), 1, "{r:?}");
        let r = health_report(Some("refresh failed".into()), true, Err(StorageError::auth("refused")), ms);
        assert_eq!(r.status, HealthStatus::Degraded, "a failed refresh is degraded, as before");
        assert_eq!(health_report(Some("expires soon".into()), true, Ok(()), ms).status, HealthStatus::Degraded);
        assert_eq!(health_report(None, true, Ok(()), ms).status, HealthStatus::Ok);
        assert_eq!(health_report(None, true, Err(StorageError::transient("down")), ms).status, HealthStatus::Offline);
    }

    use super::*;

    #[test]
    fn invalid_grant_tells_the_admin_to_reauthorise() {
        let e = classify_token_error(400, "invalid_grant");
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(e.message().contains("re-authorise"), "{e}");
        assert_eq!(classify_token_error(503, "").kind(), ErrorKind::Transient);
        assert_eq!(classify_token_error(429, "").kind(), ErrorKind::RateLimited);
    }

    #[tokio::test]
    async fn manager_without_tokens_says_how_to_authorise() {
        let settings = OAuthSettings {
            token_url: "http://127.0.0.1:9/token".into(),
            client_id: "id".into(),
            client_secret: None,
            refresh_token: None,
            access_token: None,
            expires_at: None,
            scope: None,
        };
        let m = TokenManager::new(settings, None).unwrap();
        let e = m.access_token().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(e.message().contains("not authorised yet") && e.message().contains("csal module authorize"), "{e}");
        assert!(m.health().is_some_and(|h| h.contains("not authorised yet")));
        assert_eq!(m.force_refresh().await.unwrap_err().kind(), ErrorKind::Auth);
    }

    #[test]
    fn debug_never_shows_tokens() {
        let s = OAuthSettings {
            token_url: "http://x/token".into(),
            client_id: "id".into(),
            client_secret: Some("client-secret-value".into()),
            refresh_token: Some("refresh-token-value".into()),
            access_token: Some("access-token-value".into()),
            expires_at: None,
            scope: None,
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("-value"), "{shown}");
    }
}
