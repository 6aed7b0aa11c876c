//! HTTP calls to Microsoft Graph (reqwest; timeouts and redirect policy set here).

use std::sync::Arc;

use csal_core::Result;
use csal_oauth::{BearerHttp, OAuthSettings, TokenManager, TokenStore};

use crate::config::OneDriveConfig;
use crate::error::classify;
use crate::oauth::SPEC;

pub(crate) struct GraphClient {
    /// Graph calls: bearer token, no redirects followed (downloads answer
    /// 302 to a pre-authenticated URL that we fetch ourselves, without the
    /// token).
    pub api: BearerHttp<TokenManager>,
    /// Drive root: `{graph}/me/drive` or `{graph}/drives/{id}`.
    drive: String,
    root: String,
}

impl GraphClient {
    pub fn new(config: &OneDriveConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        let ca_file = config.trusted_ca()?;
        let http =
            csal_http::HttpOptions::new(concat!("csal-onedrive/", env!("CARGO_PKG_VERSION")), config.timeouts()?)
                .ca_file(ca_file.clone())
                .build()?;
        let token_url = config.token_url.clone().unwrap_or_else(|| SPEC.token_url.replace("{tenant}", &config.tenant));
        let tokens = TokenManager::new(
            OAuthSettings {
                token_url,
                client_id: config.client_id.clone(),
                client_secret: config.client_secret.clone(),
                refresh_token: config.refresh_token.clone(),
                access_token: config.access_token.clone(),
                expires_at: None,
                scope: Some(config.scope.clone().unwrap_or_else(|| SPEC.scopes.to_owned())),
            },
            store,
        )?
        .with_ca_file(ca_file.as_ref())?
        .with_refresh_token_expiry(
            csal_oauth::parse_refresh_token_expiry(config.refresh_token_expires_at.as_deref())?,
            SPEC.refresh_token_lifetime,
        );
        let graph = config.graph_url.trim_end_matches('/');
        let drive = match config.drive_id.as_deref().filter(|d| !d.is_empty()) {
            Some(id) => format!("{graph}/drives/{id}"),
            None => format!("{graph}/me/drive"),
        };
        Ok(GraphClient {
            api: BearerHttp::new(http, Arc::new(tokens), classify),
            drive,
            root: config.root_path.clone(),
        })
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
