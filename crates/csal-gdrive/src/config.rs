use csal_core::{Result, SecretString, StorageError};

/// Resumable-upload chunks are multiples of 256 KiB.
pub const CHUNK_UNIT_KIB: u64 = 256;
/// Largest chunk we allow (memory bound): 128 MiB.
pub const MAX_CHUNK_KIB: u64 = 128 * 1024;

/// Config of a `gdrive` instance.
#[csal_core::config(
    provider = "gdrive",
    name = "Google Drive",
    category = file_sync,
    description = "Files in Google Drive (My Drive or a shared drive); OAuth 2 user credentials or a service-account key.",
    timeouts(connect = 10, read = 60, read_alias = "timeout_secs"),
    tls
)]
#[derive(Clone)]
pub struct GDriveConfig {
    /// Google Cloud console → APIs & Services → Credentials (user OAuth; not with a service account).
    #[field(label = "OAuth client id", doc_url = "https://developers.google.com/workspace/guides/create-credentials")]
    pub client_id: Option<String>,
    /// The client secret of that OAuth client.
    #[field(
        label = "OAuth client secret",
        doc_url = "https://developers.google.com/workspace/guides/create-credentials"
    )]
    pub client_secret: Option<SecretString>,
    /// Set by `csal module authorize` (or the admin UI's Authorize button); or paste one from the authorization-code flow with access_type=offline.
    #[field(label = "Refresh token", doc_url = "https://developers.google.com/identity/protocols/oauth2/web-server")]
    pub refresh_token: Option<SecretString>,
    /// Optional; refreshed automatically.
    #[field(label = "Access token", doc_url = "https://developers.google.com/identity/protocols/oauth2/web-server")]
    pub access_token: Option<SecretString>,
    /// Instead of user OAuth: the JSON key of a service account the folder is shared with.
    #[field(
        label = "Service-account key (JSON)",
        secret_multiline,
        doc_url = "https://developers.google.com/identity/protocols/oauth2/service-account"
    )]
    pub service_account_json: Option<SecretString>,
    /// Id of the folder holding this instance's files (from its URL); root = My Drive.
    #[field(label = "Root folder id", default = "root")]
    pub root_folder_id: String,
    /// Set when the folder is in a shared drive (supportsAllDrives).
    #[field(label = "Shared drive", default = false)]
    pub shared_drive: bool,
    /// Resumable-upload chunk, a multiple of 256 KiB.
    #[field(label = "Upload chunk (KiB)", default = 8192)]
    pub chunk_size_kib: u64,
    /// Override for tests.
    #[field(label = "API URL", url, credential_target, default = "https://www.googleapis.com")]
    pub api_url: String,
    /// Override for tests (default: Google's token endpoint).
    #[field(label = "Token URL", url, credential_target)]
    pub token_url: Option<String>,
}

impl GDriveConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: &str| Err(StorageError::invalid_config(format!("field '{field}': {why}")));
        if self.service_account_json.is_some() {
            if self.refresh_token.is_some() || self.access_token.is_some() {
                return bad("service_account_json", "give either a service-account key or user OAuth tokens, not both");
            }
        } else {
            if self.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
                return bad("client_id", "the OAuth client id is required (or give service_account_json)");
            }
        }
        let id = &self.root_folder_id;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return bad("root_folder_id", "must be a Drive folder id (letters, digits, - and _) or root");
        }
        let kib = self.chunk_size_kib;
        if kib == 0 || !kib.is_multiple_of(CHUNK_UNIT_KIB) || kib > MAX_CHUNK_KIB {
            return bad("chunk_size_kib", "must be a multiple of 256 between 256 and 131072");
        }
        self.timeouts()?;
        Ok(())
    }

    pub(crate) fn chunk_size(&self) -> usize {
        (self.chunk_size_kib * 1024) as usize
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<super::GDriveConfig>();
    }
}
