use csal_core::{ConfigField, Result, SecretString, StorageError};

/// Default upload-session chunk: 8 MiB (a multiple of 4 MiB, as Dropbox asks).
pub const DEFAULT_CHUNK_MB: u64 = 8;
/// Largest chunk: one upload call may carry at most 150 MB.
pub const MAX_CHUNK_MB: u64 = 140;

/// Config of a `dropbox` instance.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropboxConfig {
    /// The app key (OAuth client id) from the Dropbox App Console.
    pub app_key: String,
    /// The app secret (not needed for PKCE-authorised tokens).
    pub app_secret: Option<SecretString>,
    /// Long-lived refresh token from the authorization-code flow.
    pub refresh_token: Option<SecretString>,
    /// A short-lived access token (optional; fetched with the refresh token).
    pub access_token: Option<SecretString>,
    /// Folder that holds this instance's objects: "" (the app folder or the
    /// account root) or "/some/folder".
    #[serde(default)]
    pub root_path: String,
    /// Upload-session chunk size in MiB, a multiple of 4 (default 8).
    pub chunk_size_mb: Option<u64>,
    /// API host (default `https://api.dropboxapi.com`); for tests.
    pub api_url: Option<String>,
    /// Content host (default `https://content.dropboxapi.com`); for tests.
    pub content_url: Option<String>,
    /// OAuth token endpoint (default `https://api.dropboxapi.com/oauth2/token`).
    pub token_url: Option<String>,
    /// Seconds without progress before a call fails (default 60).
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for DropboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropboxConfig")
            .field("app_key", &self.app_key)
            .field("root_path", &self.root_path)
            .field("chunk_size_mb", &self.chunk_size_mb)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl DropboxConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: &str| Err(StorageError::invalid_config(format!("field '{field}': {why}")));
        if self.app_key.trim().is_empty() {
            return bad("app_key", "the app key from the Dropbox App Console is required");
        }
        let root = &self.root_path;
        if !root.is_empty() && (!root.starts_with('/') || root.ends_with('/') || root.contains("//")) {
            return bad("root_path", "must be empty or like /folder/sub (leading slash, no trailing slash)");
        }
        if let Some(mb) = self.chunk_size_mb {
            if mb == 0 || mb % 4 != 0 || mb > MAX_CHUNK_MB {
                return bad("chunk_size_mb", "must be a multiple of 4 between 4 and 140");
            }
        }
        for (field, url) in
            [("api_url", &self.api_url), ("content_url", &self.content_url), ("token_url", &self.token_url)]
        {
            if let Some(u) = url {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    return bad(field, "must be an http:// or https:// URL");
                }
            }
        }
        if self.timeout_secs == Some(0) {
            return bad("timeout_secs", "must be at least 1");
        }
        Ok(())
    }

    pub(crate) fn chunk_size(&self) -> usize {
        (self.chunk_size_mb.unwrap_or(DEFAULT_CHUNK_MB) * 1024 * 1024) as usize
    }
}

const DOC_APPS: &str = "https://www.dropbox.com/developers/apps";
const DOC_OAUTH: &str = "https://developers.dropbox.com/oauth-guide";

pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::text("app_key", "App key")
        .required()
        .help("The app key of your Dropbox app (App Console, Settings tab).")
        .doc(DOC_APPS),
    ConfigField::secret("app_secret", "App secret")
        .help("The app secret (App Console, Settings tab). Leave empty for PKCE-authorised refresh tokens.")
        .doc(DOC_APPS),
    ConfigField::secret("refresh_token", "Refresh token")
        .help("Long-lived refresh token from the authorization-code flow with token_access_type=offline.")
        .doc(DOC_OAUTH),
    ConfigField::secret("access_token", "Access token")
        .help("Optional short-lived access token; it is refreshed automatically when it expires.")
        .doc(DOC_OAUTH),
    ConfigField::path("root_path", "Root folder")
        .default("\"\"")
        .help("Folder for this instance's files: empty for the app folder (or account root), or /folder/sub."),
    ConfigField::number("chunk_size_mb", "Upload chunk (MiB)")
        .default("8")
        .help("Files larger than this are sent in an upload session in chunks of this size (multiple of 4)."),
    ConfigField::url("api_url", "API URL").help("Override for tests (default https://api.dropboxapi.com)."),
    ConfigField::url("content_url", "Content URL").help("Override for tests (default https://content.dropboxapi.com)."),
    ConfigField::url("token_url", "Token URL")
        .help("Override for tests (default https://api.dropboxapi.com/oauth2/token)."),
    ConfigField::number("timeout_secs", "Timeout (s)")
        .default("60")
        .help("Seconds without progress before a call fails."),
];
