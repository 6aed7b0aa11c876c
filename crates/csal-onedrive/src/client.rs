//! HTTP calls to Microsoft Graph (reqwest; timeouts and redirect policy set here).

use std::sync::Arc;
use std::time::Duration;

use csal_core::{ExposeSecret, Result, SecretString, StorageError};
use csal_oauth::{OAuthSettings, TokenManager, TokenStore};

use crate::config::OneDriveConfig;
use crate::error::{GraphError, classify, retry_after, transport};

const GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
const DEFAULT_SCOPE: &str = "offline_access Files.ReadWrite.All";

pub(crate) struct GraphClient {
    /// For Graph calls (bearer token, no redirects followed).
    pub http: reqwest::Client,
    /// Drive root: `{graph}/me/drive` or `{graph}/drives/{id}`.
    drive: String,
    pub tokens: Arc<TokenManager>,
    root: String,
}

/// Microsoft identity platform refresh tokens last 90 days and are replaced
/// by a new one on every refresh.
const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

impl GraphClient {
    pub fn new(config: &OneDriveConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        let timeout = Duration::from_secs(config.timeout_secs.unwrap_or(60));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(timeout)
            // Downloads answer 302 to a pre-authenticated URL: we follow it
            // ourselves, without the bearer token and with the Range header.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StorageError::invalid_config("cannot build the HTTP client").with_source(e))?;
        let tenant = config.tenant.clone().unwrap_or_else(|| "common".to_owned());
        let token_url = config
            .token_url
            .clone()
            .unwrap_or_else(|| format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"));
        let tokens = TokenManager::new(
            OAuthSettings {
                token_url,
                client_id: config.client_id.clone(),
                client_secret: config.client_secret.clone(),
                refresh_token: config.refresh_token.clone(),
                access_token: config.access_token.clone(),
                expires_at: None,
                scope: Some(config.scope.clone().unwrap_or_else(|| DEFAULT_SCOPE.to_owned())),
            },
            store,
        )?
        .with_refresh_token_expiry(
            csal_oauth::parse_refresh_token_expiry(config.refresh_token_expires_at.as_deref())?,
            Some(REFRESH_TOKEN_LIFETIME),
        );
        let graph = config.graph_url.clone().unwrap_or_else(|| GRAPH_URL.to_owned()).trim_end_matches('/').to_owned();
        let drive = match config.drive_id.as_deref().filter(|d| !d.is_empty()) {
            Some(id) => format!("{graph}/drives/{id}"),
            None => format!("{graph}/me/drive"),
        };
        Ok(GraphClient { http, drive, tokens: Arc::new(tokens), root: config.root_path.clone() })
    }

    pub fn drive_url(&self) -> &str {
        &self.drive
    }

    /// Drive path of an object id (or of a folder relative to the root).
    pub fn path_of(&self, rel: &str) -> String {
        let rel = rel.trim_matches('/');
        if rel.is_empty() { self.root.clone() } else { format!("{}/{rel}", self.root) }
    }

    /// `{drive}/root:/path` (percent-encoded), or `{drive}/root` for the root.
    pub fn item_url(&self, rel: &str) -> String {
        let path = self.path_of(rel);
        if path.is_empty() {
            format!("{}/root", self.drive)
        } else {
            format!("{}/root:{}", self.drive, encode_path(&path))
        }
    }

    /// `item_url` + `:/action` (or `/action` on the root).
    pub fn action_url(&self, rel: &str, action: &str) -> String {
        let path = self.path_of(rel);
        if path.is_empty() {
            format!("{}/root/{action}", self.drive)
        } else {
            format!("{}/root:{}:/{action}", self.drive, encode_path(&path))
        }
    }

    /// Send with a bearer token; on 401 refresh (single-flight) and send once more.
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn(&SecretString) -> reqwest::RequestBuilder,
    ) -> Result<std::result::Result<reqwest::Response, GraphError>> {
        let resp = csal_oauth::send_with_bearer(&*self.tokens, build).await?.map_err(|e| transport(e, what))?;
        finish(resp, what).await
    }

    pub async fn json(
        &self,
        what: &str,
        build: impl Fn(&SecretString) -> reqwest::RequestBuilder,
    ) -> Result<serde_json::Value> {
        match self.send(what, build).await? {
            Ok(resp) => body_json(resp, what).await,
            Err(e) => Err(classify(e, what)),
        }
    }

    pub fn bearer(req: reqwest::RequestBuilder, token: &SecretString) -> reqwest::RequestBuilder {
        req.bearer_auth(token.expose_secret())
    }
}

/// Success and redirects pass; other statuses become [`GraphError`].
pub(crate) async fn finish(
    resp: reqwest::Response,
    what: &str,
) -> Result<std::result::Result<reqwest::Response, GraphError>> {
    let status = resp.status();
    if status.is_success() || status.is_redirection() {
        return Ok(Ok(resp));
    }
    let after = retry_after(resp.headers());
    let body = resp.bytes().await.map_err(|e| transport(e, what))?;
    Ok(Err(GraphError::parse(status.as_u16(), after, &body)))
}

pub(crate) async fn body_json(resp: reqwest::Response, what: &str) -> Result<serde_json::Value> {
    let body = resp.bytes().await.map_err(|e| transport(e, what))?;
    if body.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&body)
        .map_err(|e| StorageError::transient(format!("{what}: Graph answered with malformed JSON")).with_source(e))
}

/// Percent-encode a drive path, keeping `/` (RFC 3986 unreserved kept as is).
pub(crate) fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() * 3);
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) use csal_core::time_format::parse_rfc3339 as parse_time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_encoded() {
        assert_eq!(encode_path("/a b/ü#?.mp4"), "/a%20b/%C3%BC%23%3F.mp4");
    }

    #[test]
    fn graph_times_parse() {
        let t = parse_time("2025-11-29T09:51:11.537Z").unwrap();
        assert_eq!(t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(), 1_764_409_871);
    }
}
