//! The OAuth 2.0 authorization-code flow (RFC 6749 section 4.1) with PKCE
//! (RFC 7636, S256), for instances that have no token yet.
//!
//! Each OAuth provider crate submits one [`OAuthProviderSpec`] with
//! [`inventory::submit!`]: the provider's authorize and token endpoints,
//! scopes, extra parameters, and which config keys hold the client id and
//! secret. `csal module authorize` and the admin UI's Authorize button then
//! run the same steps:
//!
//! 1. [`OAuthClient::from_config`] reads the client from the instance config;
//! 2. [`OAuthClient::start`] makes a state and a PKCE verifier and the URL
//!    the user opens ([`PendingAuthorization::authorize_url`]);
//! 3. the provider redirects the browser to the redirect URI with `code`
//!    and `state`; [`PendingAuthorization::finish`] checks the state,
//!    reports `error=` answers, and exchanges the code at the token endpoint;
//! 4. [`OAuthClient::config_changes`] gives the config keys to save
//!    (through the catalog, which encrypts the secrets).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use csal_core::{ErrorKind, ExposeSecret, Result, SecretString, StorageError};
use sha2::Digest as _;

use crate::endpoint;
use crate::tokens::TokenSet;

/// Static description of one provider's authorization-code flow.
#[derive(Debug)]
pub struct OAuthProviderSpec {
    /// The provider_type this spec is for (`dropbox`).
    pub provider_type: &'static str,
    /// The authorization endpoint. `{name}` placeholders are filled from
    /// [`OAuthProviderSpec::url_params`].
    pub authorize_url: &'static str,
    /// The token endpoint (same placeholders).
    pub token_url: &'static str,
    /// `{name}` placeholders of the URLs: (config key, default value).
    pub url_params: &'static [(&'static str, &'static str)],
    /// Space-separated scopes asked for; empty asks for none (Dropbox then
    /// grants the app's configured permissions).
    pub scopes: &'static str,
    /// Config key that overrides [`OAuthProviderSpec::scopes`], if any.
    pub scope_key: Option<&'static str>,
    /// Extra authorize-URL parameters (`token_access_type=offline`).
    pub extra_params: &'static [(&'static str, &'static str)],
    /// Config key of the client id (Dropbox: `app_key`).
    pub client_id_key: &'static str,
    /// Config key of the client secret, if the provider has one.
    pub client_secret_key: Option<&'static str>,
    /// Config key that overrides the authorize URL (tests), if any.
    pub authorize_url_key: Option<&'static str>,
    /// Config key that overrides the token URL (tests), if any. When it is
    /// set and the authorize URL is not overridden, the authorize URL is the
    /// default one's path on the token URL's origin (a local fake serves
    /// both).
    pub token_url_key: Option<&'static str>,
    /// How long a new refresh token lasts, when the provider has a fixed
    /// policy (Microsoft: 90 days).
    pub refresh_token_lifetime: Option<Duration>,
    /// The config has a [`crate::REFRESH_TOKEN_EXPIRES_AT`] field.
    pub saves_refresh_expiry: bool,
    /// Config keys that mean the instance does not use user OAuth (a
    /// service-account key): authorising it is refused.
    pub not_with_keys: &'static [&'static str],
}

inventory::collect!(OAuthProviderSpec);

/// The spec registered for `provider_type`, if that provider uses OAuth.
pub fn find_spec(provider_type: &str) -> Option<&'static OAuthProviderSpec> {
    inventory::iter::<OAuthProviderSpec>.into_iter().find(|s| s.provider_type == provider_type)
}

/// Every registered spec (provider types that can be authorised).
pub fn specs() -> Vec<&'static OAuthProviderSpec> {
    let mut all: Vec<_> = inventory::iter::<OAuthProviderSpec>.into_iter().collect();
    all.sort_by_key(|s| s.provider_type);
    all
}

/// One instance's OAuth client, resolved from its config.
#[derive(Clone)]
pub struct OAuthClient {
    /// The provider's endpoints and rules.
    pub spec: &'static OAuthProviderSpec,
    /// Where the user consents (the provider's default or the instance's override).
    pub authorize_url: String,
    /// Where codes and refresh tokens are exchanged for tokens.
    pub token_url: String,
    /// The app's client id, registered with the provider.
    pub client_id: String,
    /// The app's client secret; `None` for public (PKCE-only) clients.
    pub client_secret: Option<SecretString>,
    /// Space-separated scopes asked for at consent.
    pub scopes: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("provider_type", &self.spec.provider_type)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn config_str<'a>(config: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    config.get(key).and_then(serde_json::Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn fill(template: &str, spec: &OAuthProviderSpec, config: &serde_json::Value) -> String {
    let mut out = template.to_owned();
    for (key, default) in spec.url_params {
        out = out.replace(&format!("{{{key}}}"), config_str(config, key).unwrap_or(default));
    }
    out
}

impl OAuthClient {
    /// The client of an instance of `spec.provider_type`, from its config
    /// (secrets in clear, as the catalog's definitions hold them).
    pub fn from_config(spec: &'static OAuthProviderSpec, config: &serde_json::Value) -> Result<Self> {
        if let Some(key) = spec.not_with_keys.iter().find(|k| config_str(config, k).is_some()) {
            return Err(StorageError::invalid_config(format!(
                "field '{key}': this instance authenticates with '{key}', not with user OAuth; nothing to authorise"
            )));
        }
        let client_id = config_str(config, spec.client_id_key).ok_or_else(|| {
            StorageError::invalid_config(format!(
                "field '{}': the OAuth client id is required to authorise",
                spec.client_id_key
            ))
        })?;
        let client_secret = spec.client_secret_key.and_then(|k| config_str(config, k)).map(SecretString::from);
        let token_override = spec.token_url_key.and_then(|k| config_str(config, k));
        let token_url = token_override.map(str::to_owned).unwrap_or_else(|| fill(spec.token_url, spec, config));
        let authorize_url = match (spec.authorize_url_key.and_then(|k| config_str(config, k)), token_override) {
            (Some(u), _) => u.to_owned(),
            (None, Some(token)) => {
                let default = url::Url::parse(&fill(spec.authorize_url, spec, config))
                    .map_err(|_| StorageError::invalid_config("the provider's authorize URL is not a URL"))?;
                let mut on_origin = url::Url::parse(token).map_err(|_| {
                    StorageError::invalid_config(format!(
                        "field '{}': not a URL",
                        spec.token_url_key.unwrap_or("token_url")
                    ))
                })?;
                on_origin.set_path(default.path());
                on_origin.set_query(None);
                on_origin.to_string()
            }
            (None, None) => fill(spec.authorize_url, spec, config),
        };
        let scopes =
            spec.scope_key.and_then(|k| config_str(config, k)).map(str::to_owned).unwrap_or(spec.scopes.to_owned());
        let http = endpoint::client(None)?;
        Ok(OAuthClient { spec, authorize_url, token_url, client_id: client_id.to_owned(), client_secret, scopes, http })
    }

    /// Start a flow whose answer comes to `redirect_uri`: a fresh state and
    /// PKCE verifier, and the URL to open in a browser.
    pub fn start(&self, redirect_uri: &str) -> Result<PendingAuthorization> {
        let state = random_token(24)?;
        let verifier = random_token(48)?;
        let challenge = pkce_challenge(&verifier);
        let mut url = url::Url::parse(&self.authorize_url)
            .map_err(|_| StorageError::invalid_config("the authorize URL is not a URL"))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if !self.scopes.is_empty() {
                q.append_pair("scope", &self.scopes);
            }
            for (k, v) in self.spec.extra_params {
                q.append_pair(k, v);
            }
        }
        Ok(PendingAuthorization {
            client: self.clone(),
            authorize_url: url.to_string(),
            state,
            verifier: SecretString::from(verifier),
            redirect_uri: redirect_uri.to_owned(),
        })
    }

    /// The config keys to save after a successful exchange: the tokens, and
    /// the refresh token's expiry where the provider's config has it.
    pub fn config_changes(&self, tokens: &TokenSet) -> serde_json::Map<String, serde_json::Value> {
        let mut changes = serde_json::Map::new();
        changes.insert("access_token".into(), tokens.access_token.expose_secret().into());
        if let Some(refresh) = &tokens.refresh_token {
            changes.insert("refresh_token".into(), refresh.expose_secret().into());
        }
        if self.spec.saves_refresh_expiry {
            let value = tokens
                .refresh_token_expires_at
                .map(|at| serde_json::Value::from(humantime::format_rfc3339_seconds(at).to_string()))
                .unwrap_or(serde_json::Value::Null);
            changes.insert(crate::REFRESH_TOKEN_EXPIRES_AT.into(), value);
        }
        changes
    }

    async fn exchange(&self, code: &str, redirect_uri: &str, verifier: &SecretString) -> Result<TokenSet> {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose_secret()),
            ("client_id", &self.client_id),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose_secret()));
        }
        let body = match endpoint::post_form(&self.http, &self.token_url, &form).await? {
            Ok(body) => body,
            Err(answer) => return Err(classify_exchange_error(answer.status.as_u16(), &endpoint::error_code(&answer))),
        };
        let resp: CodeTokenResponse = serde_json::from_slice(&body).map_err(|e| {
            StorageError::permanent("the OAuth token endpoint answered without an access_token").with_source(e)
        })?;
        let now = SystemTime::now();
        let refresh_token_expires_at = match (resp.refresh_token.is_some(), resp.refresh_token_expires_in) {
            (true, Some(secs)) => Some(now + Duration::from_secs(secs)),
            (true, None) => self.spec.refresh_token_lifetime.map(|l| now + l),
            (false, _) => None,
        };
        Ok(TokenSet {
            access_token: SecretString::from(resp.access_token),
            refresh_token: resp.refresh_token.map(SecretString::from),
            expires_at: resp.expires_in.map(|s| now + Duration::from_secs(s)),
            refresh_token_expires_at,
        })
    }
}

/// A started flow, waiting for the provider's redirect. Holds the PKCE
/// verifier: keep it server-side, never send it to the browser.
pub struct PendingAuthorization {
    client: OAuthClient,
    authorize_url: String,
    state: String,
    verifier: SecretString,
    redirect_uri: String,
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("client", &self.client)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

impl PendingAuthorization {
    /// The URL the user opens to consent.
    pub fn authorize_url(&self) -> &str {
        &self.authorize_url
    }
    /// The `state` value the redirect must carry back.
    pub fn state(&self) -> &str {
        &self.state
    }
    /// The redirect URI sent at consent; the code exchange must send the same.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }
    /// The client the flow runs for (it also exchanges the code).
    pub fn client(&self) -> &OAuthClient {
        &self.client
    }

    /// Handle the redirect's query parameters: check `state`, report an
    /// `error=` answer (the user refused, ...), exchange the `code`.
    pub async fn finish(&self, params: &HashMap<String, String>) -> Result<TokenSet> {
        if params.get("state").map(String::as_str) != Some(self.state.as_str()) {
            return Err(StorageError::auth(
                "the authorization answer's state does not match this request (a stale or forged redirect): \
                 start the authorization again",
            ));
        }
        if let Some(error) = params.get("error") {
            let detail = params.get("error_description").map(|d| format!(" ({d})")).unwrap_or_default();
            let why = if error == "access_denied" {
                format!(
                    "the authorization was refused at the provider (access_denied{detail}): authorise again and allow access"
                )
            } else {
                format!("the provider answered the authorization with error '{error}'{detail}")
            };
            return Err(StorageError::auth(why));
        }
        let code = params.get("code").map(String::as_str).filter(|c| !c.is_empty()).ok_or_else(|| {
            StorageError::auth("the authorization answer carries no code: start the authorization again")
        })?;
        self.client.exchange(code, &self.redirect_uri, &self.verifier).await
    }
}

#[derive(serde::Deserialize)]
struct CodeTokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    refresh_token_expires_in: Option<u64>,
}

/// Token-endpoint errors of a code exchange (RFC 6749 section 5.2).
fn classify_exchange_error(status: u16, error: &str) -> StorageError {
    match (status, error) {
        (_, "invalid_grant") => StorageError::auth(
            "the authorization code was refused (invalid_grant: expired, already used, or issued for another \
             redirect URI or PKCE verifier): start the authorization again",
        ),
        (_, "invalid_client" | "unauthorized_client") => StorageError::auth(format!(
            "the OAuth client was refused ({error}): check the client id and secret in the instance config"
        )),
        (429, _) => StorageError::new(ErrorKind::RateLimited, "the OAuth token endpoint is rate limiting"),
        (500..=599, _) => StorageError::transient(format!("the OAuth token endpoint failed with HTTP {status}")),
        (400 | 401 | 403, _) => StorageError::auth(format!(
            "the OAuth token endpoint refused the code exchange (HTTP {status}{})",
            if error.is_empty() { String::new() } else { format!(", {error}") }
        )),
        _ => StorageError::permanent(format!("the OAuth token endpoint answered HTTP {status}")),
    }
}

/// `bytes` random bytes, base64url without padding (state, PKCE verifier:
/// 48 bytes give a 64-character verifier, within RFC 7636's 43..=128).
fn random_token(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| StorageError::new(ErrorKind::Permanent, format!("no system randomness for OAuth state: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// RFC 7636 S256: base64url(sha256(verifier)), no padding.
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static SPEC: OAuthProviderSpec = OAuthProviderSpec {
        provider_type: "test_oauth",
        authorize_url: "https://login.example.com/{tenant}/oauth2/v2.0/authorize",
        token_url: "https://login.example.com/{tenant}/oauth2/v2.0/token",
        url_params: &[("tenant", "common")],
        scopes: "offline_access Files.ReadWrite.All",
        scope_key: Some("scope"),
        extra_params: &[("prompt", "consent")],
        client_id_key: "client_id",
        client_secret_key: Some("client_secret"),
        authorize_url_key: None,
        token_url_key: Some("token_url"),
        refresh_token_lifetime: Some(Duration::from_secs(90 * 24 * 3600)),
        saves_refresh_expiry: true,
        not_with_keys: &["service_account_json"],
    };

    #[test]
    fn pkce_challenge_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn authorize_url_carries_pkce_state_scopes_and_extra_params() {
        let client = OAuthClient::from_config(&SPEC, &json!({"client_id": "cid", "tenant": "contoso"})).unwrap();
        assert_eq!(client.token_url, "https://login.example.com/contoso/oauth2/v2.0/token");
        let pending = client.start("http://127.0.0.1:5555/callback").unwrap();
        let url = url::Url::parse(pending.authorize_url()).unwrap();
        assert_eq!(url.path(), "/contoso/oauth2/v2.0/authorize");
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "cid");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:5555/callback");
        assert_eq!(q["state"], pending.state());
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], pkce_challenge(pending.verifier.expose_secret()));
        assert_eq!(q["scope"], "offline_access Files.ReadWrite.All");
        assert_eq!(q["prompt"], "consent");
        let other = client.start("http://127.0.0.1:5555/callback").unwrap();
        assert_ne!(other.state(), pending.state(), "each flow has its own state");
    }

    #[test]
    fn token_url_override_moves_the_authorize_url_to_the_same_origin() {
        let client = OAuthClient::from_config(
            &SPEC,
            &json!({"client_id": "cid", "token_url": "http://127.0.0.1:9/common/oauth2/v2.0/token"}),
        )
        .unwrap();
        assert_eq!(client.authorize_url, "http://127.0.0.1:9/common/oauth2/v2.0/authorize");
    }

    #[test]
    fn service_account_instances_cannot_be_authorised() {
        let e = OAuthClient::from_config(&SPEC, &json!({"client_id": "c", "service_account_json": "{}"})).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.message().contains("service_account_json"), "{e}");
        let e = OAuthClient::from_config(&SPEC, &json!({})).unwrap_err();
        assert!(e.message().contains("'client_id'"), "{e}");
    }

    #[tokio::test]
    async fn wrong_state_and_access_denied_are_auth_errors_without_calling_the_provider() {
        let client = OAuthClient::from_config(
            &SPEC,
            &json!({"client_id": "cid", "token_url": "http://127.0.0.1:9/common/oauth2/v2.0/token"}),
        )
        .unwrap();
        let pending = client.start("http://127.0.0.1:5555/callback").unwrap();
        let params = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let e = pending.finish(&params(&[("state", "forged"), ("code", "c")])).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(e.message().contains("state"), "{e}");
        let e = pending.finish(&params(&[("state", pending.state()), ("error", "access_denied")])).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(e.message().contains("refused"), "{e}");
    }

    #[test]
    fn invalid_grant_on_exchange_says_to_start_again() {
        let e = classify_exchange_error(400, "invalid_grant");
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(e.message().contains("start the authorization again"), "{e}");
    }
}
