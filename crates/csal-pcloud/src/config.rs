use std::time::Duration;

use csal_core::{ConfigField, ExposeSecret, Result, SecretString, StorageError};

/// Config of a `pcloud` instance.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PcloudConfig {
    /// `us` (api.pcloud.com) or `eu` (eapi.pcloud.com). Default `us`.
    #[serde(default)]
    pub region: Option<String>,
    /// Overrides the API base URL (tests, proxies). Wins over `region`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Folder that holds every object, e.g. `/csal`. Default `/csal`.
    #[serde(default)]
    pub root: Option<String>,
    /// OAuth 2 access token (from pCloud's OAuth flow).
    #[serde(default)]
    pub access_token: Option<SecretString>,
    /// Account e-mail for username/password login.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Request timeout in seconds (default 120; uploads of one part must fit).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Files up to this size go through one `uploadfile`; larger ones through
    /// an upload session. Also the session part size. Default 8 MiB.
    #[serde(default)]
    pub part_size: Option<u64>,
}

impl std::fmt::Debug for PcloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcloudConfig")
            .field("region", &self.region)
            .field("api_url", &self.api_url)
            .field("root", &self.root)
            .field("access_token", &self.access_token.as_ref().map(|_| "********"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .finish()
    }
}

/// How the client authenticates.
#[derive(Clone)]
pub(crate) enum Credentials {
    Token(SecretString),
    Login { username: String, password: SecretString },
}

pub(crate) struct Resolved {
    pub api_url: String,
    pub root: String,
    pub credentials: Credentials,
    pub timeout: Duration,
    pub part_size: usize,
}

pub(crate) const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;

impl PcloudConfig {
    pub(crate) fn resolve(&self) -> Result<Resolved> {
        let api_url = match (&self.api_url, self.region.as_deref()) {
            (Some(url), _) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(StorageError::invalid_config("pcloud: api_url must start with http:// or https://"));
                }
                url.trim_end_matches('/').to_owned()
            }
            (None, None | Some("us")) => "https://api.pcloud.com".to_owned(),
            (None, Some("eu")) => "https://eapi.pcloud.com".to_owned(),
            (None, Some(other)) => {
                return Err(StorageError::invalid_config(format!(
                    "pcloud: region must be 'us' or 'eu', not {other:?}"
                )));
            }
        };
        let root = self.root.clone().unwrap_or_else(|| "/csal".to_owned());
        let root = format!("/{}", root.trim_matches('/'));
        if root.split('/').any(|s| s == ".." || s == ".") || root.contains('\\') {
            return Err(StorageError::invalid_config("pcloud: root must be a plain folder path like /csal"));
        }
        let nonblank = |s: &SecretString| !s.expose_secret().is_empty();
        let credentials = match (&self.access_token, &self.username, &self.password) {
            (Some(t), None, None) if nonblank(t) => Credentials::Token(t.clone()),
            (None, Some(u), Some(p)) if !u.is_empty() && nonblank(p) => {
                Credentials::Login { username: u.clone(), password: p.clone() }
            }
            _ => {
                return Err(StorageError::invalid_config(
                    "pcloud: set either access_token, or username and password (not both)",
                ));
            }
        };
        let part_size = self.part_size.unwrap_or(DEFAULT_PART_SIZE);
        if !(64 * 1024..=1024 * 1024 * 1024).contains(&part_size) {
            return Err(StorageError::invalid_config("pcloud: part_size must be between 64 KiB and 1 GiB"));
        }
        Ok(Resolved {
            api_url,
            root,
            credentials,
            timeout: Duration::from_secs(self.timeout_secs.unwrap_or(120).max(1)),
            part_size: part_size as usize,
        })
    }
}

pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::select("region", "Data region", &["us", "eu"])
        .default("\"us\"")
        .help("Where the account lives: us = api.pcloud.com, eu = eapi.pcloud.com.")
        .doc("https://docs.pcloud.com/methods/intro/"),
    ConfigField::url("api_url", "API URL override").help("Only for tests or proxies; replaces the region's host."),
    ConfigField::path("root", "Root folder").default("\"/csal\"").help("Folder that holds every object."),
    ConfigField::secret("access_token", "OAuth access token")
        .help("Token from pCloud's OAuth 2 flow. Use this or username/password.")
        .doc("https://docs.pcloud.com/methods/oauth_2.0/authorize.html"),
    ConfigField::text("username", "Account e-mail").help("For username/password login."),
    ConfigField::secret("password", "Password").help("For username/password login."),
    ConfigField::number("timeout_secs", "Request timeout (s)").default("120"),
    ConfigField::number("part_size", "Upload part size (bytes)")
        .default("8388608")
        .help("Larger files are uploaded in an upload session in parts of this size."),
];
