use csal_core::{Result, SecretString, StorageError};

/// Largest chunk: one upload call may carry at most 150 MB.
pub const MAX_CHUNK_MB: u64 = 140;

/// Config of a `dropbox` instance.
#[csal_core::config(
    provider = "dropbox",
    name = "Dropbox",
    category = file_sync,
    description = "Files in a Dropbox account (app folder or full access), OAuth 2 with refresh tokens.",
    timeouts(connect = 10, read = 60, read_alias = "timeout_secs"),
    tls
)]
#[derive(Clone)]
pub struct DropboxConfig {
    /// The app key of your Dropbox app (App Console, Settings tab).
    #[field(label = "App key", doc_url = "https://www.dropbox.com/developers/apps")]
    pub app_key: String,
    /// The app secret (App Console, Settings tab). Leave empty for PKCE-authorised refresh tokens.
    #[field(label = "App secret", doc_url = "https://www.dropbox.com/developers/apps")]
    pub app_secret: Option<SecretString>,
    /// Long-lived refresh token from the authorization-code flow with token_access_type=offline.
    #[field(label = "Refresh token", doc_url = "https://developers.dropbox.com/oauth-guide")]
    pub refresh_token: Option<SecretString>,
    /// Optional short-lived access token; it is refreshed automatically when it expires.
    #[field(label = "Access token", doc_url = "https://developers.dropbox.com/oauth-guide")]
    pub access_token: Option<SecretString>,
    /// Folder for this instance's files: empty for the app folder (or account root), or /folder/sub.
    #[field(label = "Root folder", path, default = "")]
    pub root_path: String,
    /// Files larger than this are sent in an upload session in chunks of this size (multiple of 4).
    #[field(label = "Upload chunk (MiB)", default = 8)]
    pub chunk_size_mb: u64,
    /// Override for tests.
    #[field(label = "API URL", url, credential_target, default = "https://api.dropboxapi.com")]
    pub api_url: String,
    /// Override for tests.
    #[field(label = "Content URL", url, credential_target, default = "https://content.dropboxapi.com")]
    pub content_url: String,
    /// Override for tests (default: Dropbox's token endpoint).
    #[field(label = "Token URL", url, credential_target)]
    pub token_url: Option<String>,
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
        let mb = self.chunk_size_mb;
        if mb == 0 || !mb.is_multiple_of(4) || mb > MAX_CHUNK_MB {
            return bad("chunk_size_mb", "must be a multiple of 4 between 4 and 140");
        }
        self.timeouts()?;
        Ok(())
    }

    pub(crate) fn chunk_size(&self) -> usize {
        (self.chunk_size_mb * 1024 * 1024) as usize
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<super::DropboxConfig>();
    }
}
