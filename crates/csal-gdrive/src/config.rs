use csal_core::{ConfigField, Result, SecretString, StorageError};

/// Resumable-upload chunks are multiples of 256 KiB.
pub const CHUNK_UNIT_KIB: u64 = 256;
/// Default chunk: 8 MiB.
pub const DEFAULT_CHUNK_KIB: u64 = 8 * 1024;
/// Largest chunk we allow (memory bound): 128 MiB.
pub const MAX_CHUNK_KIB: u64 = 128 * 1024;

/// Config of a `gdrive` instance.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GDriveConfig {
    /// OAuth client id (Google Cloud console → Credentials); user OAuth only.
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    /// Refresh token from the authorization-code flow (access_type=offline).
    pub refresh_token: Option<SecretString>,
    pub access_token: Option<SecretString>,
    /// A service-account key JSON (instead of user OAuth): the folder must be
    /// shared with the service account, or be in a shared drive it belongs to.
    pub service_account_json: Option<SecretString>,
    /// Folder id that holds this instance's objects (default `root`, My Drive).
    pub root_folder_id: Option<String>,
    /// Set for folders in shared drives (`supportsAllDrives=true`).
    #[serde(default)]
    pub shared_drive: bool,
    /// Resumable chunk size in KiB, a multiple of 256 (default 8192).
    pub chunk_size_kib: Option<u64>,
    /// API root (default `https://www.googleapis.com`); for tests.
    pub api_url: Option<String>,
    /// Token endpoint (default `https://oauth2.googleapis.com/token`).
    pub token_url: Option<String>,
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for GDriveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GDriveConfig")
            .field("client_id", &self.client_id)
            .field("root_folder_id", &self.root_folder_id)
            .field("shared_drive", &self.shared_drive)
            .finish_non_exhaustive()
    }
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
        if let Some(id) = &self.root_folder_id {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return bad("root_folder_id", "must be a Drive folder id (letters, digits, - and _) or root");
            }
        }
        if let Some(kib) = self.chunk_size_kib {
            if kib == 0 || kib % CHUNK_UNIT_KIB != 0 || kib > MAX_CHUNK_KIB {
                return bad("chunk_size_kib", "must be a multiple of 256 between 256 and 131072");
            }
        }
        if self.timeout_secs == Some(0) {
            return bad("timeout_secs", "must be at least 1");
        }
        Ok(())
    }

    pub(crate) fn chunk_size(&self) -> usize {
        (self.chunk_size_kib.unwrap_or(DEFAULT_CHUNK_KIB) * 1024) as usize
    }
}

const DOC_CREDS: &str = "https://developers.google.com/workspace/guides/create-credentials";
const DOC_OAUTH: &str = "https://developers.google.com/identity/protocols/oauth2/web-server";

pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::text("client_id", "OAuth client id")
        .help("Google Cloud console → APIs & Services → Credentials (user OAuth; not with a service account).")
        .doc(DOC_CREDS),
    ConfigField::secret("client_secret", "OAuth client secret")
        .help("The client secret of that OAuth client.")
        .doc(DOC_CREDS),
    ConfigField::secret("refresh_token", "Refresh token")
        .help("Set by `csal module authorize` (or the admin UI's Authorize button); or paste one from the authorization-code flow with access_type=offline.")
        .doc(DOC_OAUTH),
    ConfigField::secret("access_token", "Access token").help("Optional; refreshed automatically.").doc(DOC_OAUTH),
    ConfigField::secret_multiline("service_account_json", "Service-account key (JSON)")
        .help("Instead of user OAuth: the JSON key of a service account the folder is shared with.")
        .doc("https://developers.google.com/identity/protocols/oauth2/service-account"),
    ConfigField::text("root_folder_id", "Root folder id")
        .default("\"root\"")
        .help("Id of the folder holding this instance's files (from its URL); root = My Drive."),
    ConfigField::bool("shared_drive", "Shared drive")
        .default("false")
        .help("Set when the folder is in a shared drive."),
    ConfigField::number("chunk_size_kib", "Upload chunk (KiB)")
        .default("8192")
        .help("Resumable-upload chunk, a multiple of 256 KiB."),
    ConfigField::url("api_url", "API URL").help("Override for tests (default https://www.googleapis.com)."),
    ConfigField::url("token_url", "Token URL")
        .help("Override for tests (default https://oauth2.googleapis.com/token)."),
    ConfigField::number("timeout_secs", "Timeout (s)")
        .default("60")
        .help("Seconds without progress before a call fails."),
];
