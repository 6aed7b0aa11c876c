//! HTTP calls to the Dropbox API v2 (reqwest; timeouts set here).
//!
//! Why not dropbox-sdk: its default async client is built with
//! `https_only(true)` and `http2_prior_knowledge()` against hard-coded
//! `https://api.dropboxapi.com` / `content.dropboxapi.com` hosts, so it
//! cannot reach a loopback fake, offers no timeouts, and its own token cache
//! would bypass our single-flight refresh and TokenStore. The HTTP API is
//! small and documented; we speak it directly.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use csal_core::{ExposeSecret, Result, SecretString, StorageError};
use csal_oauth::{OAuthSettings, TokenManager, TokenStore};

use crate::config::DropboxConfig;
use crate::error::{ApiError, classify, retry_after, transport};

const API_URL: &str = "https://api.dropboxapi.com";
const CONTENT_URL: &str = "https://content.dropboxapi.com";
const TOKEN_URL: &str = "https://api.dropboxapi.com/oauth2/token";

/// Which host an endpoint lives on, and how it takes its argument.
#[derive(Clone, Copy)]
pub(crate) enum Host {
    /// RPC endpoint: JSON body.
    Api,
    /// Content endpoint: JSON in `Dropbox-API-Arg`, bytes in the body.
    Content,
}

pub(crate) struct DropboxClient {
    http: reqwest::Client,
    api_url: String,
    content_url: String,
    pub(crate) tokens: Arc<TokenManager>,
    /// Root folder ("" or "/folder"), no trailing slash.
    root: String,
}

/// One call to make (rebuilt when a refreshed token is needed).
pub(crate) struct Call<'a> {
    pub host: Host,
    pub endpoint: &'a str,
    pub arg: &'a serde_json::Value,
    pub body: Bytes,
    pub range: Option<String>,
}

impl DropboxClient {
    pub fn new(config: &DropboxConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        let timeout = Duration::from_secs(config.timeout_secs.unwrap_or(60));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(timeout)
            .build()
            .map_err(|e| StorageError::invalid_config("cannot build the HTTP client").with_source(e))?;
        let tokens = TokenManager::new(
            OAuthSettings {
                token_url: config.token_url.clone().unwrap_or_else(|| TOKEN_URL.to_owned()),
                client_id: config.app_key.clone(),
                client_secret: config.app_secret.clone(),
                refresh_token: config.refresh_token.clone(),
                access_token: config.access_token.clone(),
                expires_at: None,
                scope: None,
            },
            store,
        )?;
        let trim =
            |u: &Option<String>, d: &str| u.clone().unwrap_or_else(|| d.to_owned()).trim_end_matches('/').to_owned();
        Ok(DropboxClient {
            http,
            api_url: trim(&config.api_url, API_URL),
            content_url: trim(&config.content_url, CONTENT_URL),
            tokens: Arc::new(tokens),
            root: config.root_path.clone(),
        })
    }

    /// The Dropbox path of an object id.
    pub fn path_of(&self, object_id: &str) -> String {
        format!("{}/{object_id}", self.root)
    }

    /// The Dropbox path of a list folder ("" for the root).
    pub fn folder_of(&self, path: &str) -> String {
        let path = path.trim_matches('/');
        if path.is_empty() { self.root.clone() } else { format!("{}/{path}", self.root) }
    }

    /// The object id of a Dropbox path under the root (case-insensitive prefix).
    pub fn id_of(&self, path_display: &str) -> Option<String> {
        let root_len = self.root.len();
        let head = path_display.get(..root_len)?;
        if !head.eq_ignore_ascii_case(&self.root) && head.to_lowercase() != self.root.to_lowercase() {
            return None;
        }
        path_display.get(root_len..)?.strip_prefix('/').map(str::to_owned)
    }

    fn request(&self, call: &Call<'_>, token: &SecretString) -> reqwest::RequestBuilder {
        let base = match call.host {
            Host::Api => &self.api_url,
            Host::Content => &self.content_url,
        };
        let mut req = self.http.post(format!("{base}/2/{}", call.endpoint)).bearer_auth(token.expose_secret());
        match call.host {
            Host::Api => {
                if call.arg.is_null() {
                    // No-argument RPC: no body, no content type.
                } else {
                    req = req.header("Content-Type", "application/json").body(call.arg.to_string());
                }
            }
            Host::Content => {
                req = req
                    .header("Dropbox-API-Arg", escape_non_ascii(&call.arg.to_string()))
                    .header("Content-Type", "application/octet-stream")
                    .body(call.body.clone());
            }
        }
        if let Some(range) = &call.range {
            req = req.header("Range", range);
        }
        req
    }

    /// Send a call; on `expired_access_token` refresh the token (single-flight)
    /// and send it once more. Non-success answers come back as [`ApiError`].
    pub async fn send(&self, call: &Call<'_>, what: &str) -> Result<std::result::Result<reqwest::Response, ApiError>> {
        let token = self.tokens.access_token().await?;
        let resp = self.request(call, &token).send().await.map_err(|e| transport(e, what))?;
        if resp.status().is_success() {
            return Ok(Ok(resp));
        }
        let err = read_error(resp, what).await?;
        if !err.token_expired() {
            return Ok(Err(err));
        }
        tracing::debug!(endpoint = call.endpoint, "access token refused; refreshing");
        let token = self.tokens.refresh_after_rejection(&token).await?;
        let resp = self.request(call, &token).send().await.map_err(|e| transport(e, what))?;
        if resp.status().is_success() {
            return Ok(Ok(resp));
        }
        Ok(Err(read_error(resp, what).await?))
    }

    /// Send a call and parse a JSON answer; errors classified.
    pub async fn json(&self, call: &Call<'_>, what: &str) -> Result<serde_json::Value> {
        match self.send(call, what).await? {
            Ok(resp) => {
                let body = resp.bytes().await.map_err(|e| transport(e, what))?;
                if body.is_empty() {
                    return Ok(serde_json::Value::Null);
                }
                serde_json::from_slice(&body).map_err(|e| {
                    StorageError::transient(format!("{what}: Dropbox answered with malformed JSON")).with_source(e)
                })
            }
            Err(e) => Err(classify(e, what)),
        }
    }
}

async fn read_error(resp: reqwest::Response, what: &str) -> Result<ApiError> {
    let status = resp.status().as_u16();
    let after = retry_after(resp.headers());
    let body = resp.bytes().await.map_err(|e| transport(e, what))?;
    Ok(ApiError::parse(status, after, &body))
}

/// `Dropbox-API-Arg` must be ASCII: escape the rest as `\uXXXX` (JSON allows it).
pub(crate) fn escape_non_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Parse Dropbox's `%Y-%m-%dT%H:%M:%SZ` timestamps.
pub(crate) fn parse_time(s: &str) -> Option<std::time::SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs).ok().map(|s| std::time::UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        let t = parse_time("2025-11-29T09:51:11Z").unwrap();
        assert_eq!(t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(), 1_764_409_871);
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn api_arg_is_ascii() {
        let arg = escape_non_ascii(&serde_json::json!({"path": "/ファイル ü"}).to_string());
        assert!(arg.is_ascii());
        let back: serde_json::Value = serde_json::from_str(&arg).unwrap();
        assert_eq!(back["path"], "/ファイル ü");
    }
}
