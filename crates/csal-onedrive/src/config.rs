use csal_core::{Result, SecretString, StorageError};

/// Graph fragments are multiples of 320 KiB.
pub const FRAGMENT_UNIT_KIB: u64 = 320;
/// Largest fragment Graph accepts: 60 MiB.
pub const MAX_CHUNK_KIB: u64 = 60 * 1024;

/// Config of a `onedrive` instance.
#[csal_core::config(
    provider = "onedrive",
    name = "OneDrive / SharePoint (Microsoft Graph)",
    category = file_sync,
    description = "Files in a OneDrive (personal or business) or SharePoint drive via Microsoft Graph, OAuth 2 refresh tokens.",
    timeouts(connect = 10, read = 60, read_alias = "timeout_secs"),
    tls
)]
#[derive(Clone)]
pub struct OneDriveConfig {
    /// From the Entra ID app registration (Overview page).
    #[field(
        label = "Application (client) id",
        doc_url = "https://learn.microsoft.com/en-us/entra/identity-platform/quickstart-register-app"
    )]
    pub client_id: String,
    /// Certificates & secrets → client secret value. Empty for public-client (mobile/desktop) registrations.
    #[field(
        label = "Client secret",
        doc_url = "https://learn.microsoft.com/en-us/entra/identity-platform/quickstart-register-app"
    )]
    pub client_secret: Option<SecretString>,
    /// Set by `csal module authorize` (or the admin UI's Authorize button); or paste one from the authorization-code flow with offline_access.
    #[field(
        label = "Refresh token",
        doc_url = "https://learn.microsoft.com/en-us/onedrive/developer/rest-api/getting-started/graph-oauth"
    )]
    pub refresh_token: Option<SecretString>,
    /// Optional; refreshed automatically.
    #[field(
        label = "Access token",
        doc_url = "https://learn.microsoft.com/en-us/onedrive/developer/rest-api/getting-started/graph-oauth"
    )]
    pub access_token: Option<SecretString>,
    /// RFC 3339 time; set by `csal module authorize` and on each refresh. Health warns a week before.
    #[field(label = "Refresh token expires at")]
    pub refresh_token_expires_at: Option<String>,
    /// common, consumers (personal accounts), organizations, or your tenant id.
    #[field(label = "Tenant", default = "common")]
    pub tenant: String,
    /// Empty for the signed-in user's OneDrive; a drive id for SharePoint libraries.
    #[field(label = "Drive id")]
    pub drive_id: Option<String>,
    /// Folder for this instance's files: empty or /folder/sub.
    #[field(label = "Root folder", path, default = "")]
    pub root_path: String,
    /// Upload-session fragment size, a multiple of 320 KiB, at most 61440.
    #[field(label = "Upload fragment (KiB)", default = 10240)]
    pub chunk_size_kib: u64,
    /// Scopes requested when refreshing the token (default: those the authorization asks for).
    #[field(label = "Scopes")]
    pub scope: Option<String>,
    /// Override for tests.
    #[field(label = "Graph URL", url, credential_target, default = "https://graph.microsoft.com/v1.0")]
    pub graph_url: String,
    /// Override for tests (default: the tenant's Microsoft identity platform endpoint).
    #[field(label = "Token URL", url, credential_target)]
    pub token_url: Option<String>,
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
        let kib = self.chunk_size_kib;
        if kib == 0 || !kib.is_multiple_of(FRAGMENT_UNIT_KIB) || kib > MAX_CHUNK_KIB {
            return bad("chunk_size_kib", "must be a multiple of 320 between 320 and 61440");
        }
        if let Some(d) = &self.drive_id
            && (d.contains('/') || d.contains('?') || d.contains('#'))
        {
            return bad("drive_id", "must be a bare drive id");
        }
        let t = &self.tenant;
        if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
            return bad("tenant", "must be common, consumers, organizations, a tenant id or a domain");
        }
        csal_oauth::parse_refresh_token_expiry(self.refresh_token_expires_at.as_deref())?;
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
        csal_core::spec::assert_spec_agrees::<super::OneDriveConfig>();
    }
}
