use csal_core::{ConfigField, Result, SecretString, StorageError};

/// Graph fragments are multiples of 320 KiB.
pub const FRAGMENT_UNIT_KIB: u64 = 320;
/// Default fragment: 10 MiB (32 × 320 KiB).
pub const DEFAULT_CHUNK_KIB: u64 = 10 * 1024;
/// Largest fragment Graph accepts: 60 MiB.
pub const MAX_CHUNK_KIB: u64 = 60 * 1024;

/// Config of a `onedrive` instance.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneDriveConfig {
    /// Application (client) id of the Entra ID app registration.
    pub client_id: String,
    /// Client secret (confidential web apps); none for public clients.
    pub client_secret: Option<SecretString>,
    /// Refresh token from the authorization-code flow (scope offline_access).
    pub refresh_token: Option<SecretString>,
    /// Optional current access token.
    pub access_token: Option<SecretString>,
    /// When the refresh token expires (RFC 3339; Microsoft: 90 days after
    /// issue, renewed on every refresh). Kept current by the token store.
    pub refresh_token_expires_at: Option<String>,
    /// Tenant: `common`, `consumers`, `organizations` or a tenant id (default common).
    pub tenant: Option<String>,
    /// Drive id; empty = the signed-in user's drive (`/me/drive`).
    pub drive_id: Option<String>,
    /// Folder for this instance's objects: "" or "/folder/sub".
    #[serde(default)]
    pub root_path: String,
    /// Upload fragment size in KiB, a multiple of 320 (default 10240).
    pub chunk_size_kib: Option<u64>,
    /// Scopes asked for on refresh (default "offline_access Files.ReadWrite.All").
    pub scope: Option<String>,
    /// Graph root (default `https://graph.microsoft.com/v1.0`); for tests.
    pub graph_url: Option<String>,
    /// Token endpoint (default `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`).
    pub token_url: Option<String>,
    /// Seconds without progress before a call fails (default 60).
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for OneDriveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneDriveConfig")
            .field("client_id", &self.client_id)
            .field("tenant", &self.tenant)
            .field("drive_id", &self.drive_id)
            .field("root_path", &self.root_path)
            .finish_non_exhaustive()
    }
}

impl OneDriveConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: &str| Err(StorageError::invalid_config(format!("field '{field}': {why}")));
        if self.client_id.trim().is_empty() {
            return bad("client_id", "the application (client) id is required");
        }
        let root = &self.root_path;
        if !root.is_empty() && (!root.starts_with('/') || root.ends_with('/') || root.contains("//")) {
            return bad("root_path", "must be empty or like /folder/sub (leading slash, no trailing slash)");
        }
        if let Some(kib) = self.chunk_size_kib {
            if kib == 0 || kib % FRAGMENT_UNIT_KIB != 0 || kib > MAX_CHUNK_KIB {
                return bad("chunk_size_kib", "must be a multiple of 320 between 320 and 61440");
            }
        }
        if let Some(d) = &self.drive_id {
            if d.contains('/') || d.contains('?') || d.contains('#') {
                return bad("drive_id", "must be a bare drive id");
            }
        }
        if let Some(t) = &self.tenant {
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                return bad("tenant", "must be common, consumers, organizations, a tenant id or a domain");
            }
        }
        csal_oauth::parse_refresh_token_expiry(self.refresh_token_expires_at.as_deref())?;
        if self.timeout_secs == Some(0) {
            return bad("timeout_secs", "must be at least 1");
        }
        Ok(())
    }

    pub(crate) fn chunk_size(&self) -> usize {
        (self.chunk_size_kib.unwrap_or(DEFAULT_CHUNK_KIB) * 1024) as usize
    }
}

const DOC_APP: &str = "https://learn.microsoft.com/en-us/entra/identity-platform/quickstart-register-app";
const DOC_AUTH: &str = "https://learn.microsoft.com/en-us/onedrive/developer/rest-api/getting-started/graph-oauth";

pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::text("client_id", "Application (client) id")
        .required()
        .help("From the Entra ID app registration (Overview page).")
        .doc(DOC_APP),
    ConfigField::secret("client_secret", "Client secret")
        .help("Certificates & secrets → client secret value. Empty for public-client (mobile/desktop) registrations.")
        .doc(DOC_APP),
    ConfigField::secret("refresh_token", "Refresh token")
        .help("Set by `csal module authorize` (or the admin UI's Authorize button); or paste one from the authorization-code flow with offline_access.")
        .doc(DOC_AUTH),
    ConfigField::secret("access_token", "Access token").help("Optional; refreshed automatically.").doc(DOC_AUTH),
    ConfigField::text("refresh_token_expires_at", "Refresh token expires at")
        .help("RFC 3339 time; set by `csal module authorize` and on each refresh. Health warns a week before."),
    ConfigField::text("tenant", "Tenant")
        .default("\"common\"")
        .help("common, consumers (personal accounts), organizations, or your tenant id."),
    ConfigField::text("drive_id", "Drive id")
        .help("Empty for the signed-in user's OneDrive; a drive id for SharePoint libraries."),
    ConfigField::path("root_path", "Root folder")
        .default("\"\"")
        .help("Folder for this instance's files: empty or /folder/sub."),
    ConfigField::number("chunk_size_kib", "Upload fragment (KiB)")
        .default("10240")
        .help("Upload-session fragment size, a multiple of 320 KiB, at most 61440."),
    ConfigField::text("scope", "Scopes")
        .default("\"offline_access Files.ReadWrite.All\"")
        .help("Scopes requested when refreshing the token."),
    ConfigField::url("graph_url", "Graph URL").help("Override for tests (default https://graph.microsoft.com/v1.0)."),
    ConfigField::url("token_url", "Token URL").help("Override for tests."),
    ConfigField::number("timeout_secs", "Timeout (s)")
        .default("60")
        .help("Seconds without progress before a call fails."),
];
