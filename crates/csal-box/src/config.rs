use csal_core::{Result, SecretString, StorageError};

/// Largest direct (single request) upload Box takes: 50 MB.
pub const MAX_DIRECT_UPLOAD: u64 = 50_000_000;

/// How the instance authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// User OAuth 2: refresh token (single-use, rotated on every refresh).
    OAuth,
    /// Server-to-server Client Credentials Grant (enterprise or app user).
    ClientCredentials,
}

/// Config of a `box` instance.
#[csal_core::config(
    provider = "box",
    name = "Box",
    category = file_sync,
    description = "Files in a Box folder: OAuth 2 (rotating refresh tokens) or Client Credentials Grant, chunked upload sessions with SHA-1 digests.",
    timeouts(connect = 10, read = 60, read_alias = "timeout_secs"),
    tls
)]
#[derive(Clone)]
pub struct BoxConfig {
    /// oauth: a user's refresh token. client_credentials: a server app (Client Credentials Grant).
    #[field(
        label = "Authentication",
        select = ["oauth", "client_credentials"],
        default = "oauth",
        doc_url = "https://developer.box.com/guides/authentication/client-credentials/client-credentials-setup/"
    )]
    pub auth_method: String,
    /// Developer Console → your app → Configuration → OAuth 2.0 Credentials.
    #[field(label = "Client id", doc_url = "https://developer.box.com/guides/authentication/oauth2/oauth2-setup/")]
    pub client_id: String,
    /// Same page as the client id. Needed to refresh tokens and for client credentials.
    #[field(label = "Client secret", doc_url = "https://developer.box.com/guides/authentication/oauth2/oauth2-setup/")]
    pub client_secret: Option<SecretString>,
    /// OAuth: from the authorization-code flow. Single use: every refresh replaces it (saved automatically).
    #[field(label = "Refresh token", doc_url = "https://developer.box.com/guides/authentication/tokens/refresh/")]
    pub refresh_token: Option<SecretString>,
    /// Optional; refreshed automatically.
    #[field(label = "Access token", doc_url = "https://developer.box.com/guides/authentication/tokens/refresh/")]
    pub access_token: Option<SecretString>,
    /// RFC 3339 time; Box refresh tokens last 60 days. Set on each refresh. Health warns a week before.
    #[field(label = "Refresh token expires at")]
    pub refresh_token_expires_at: Option<String>,
    /// Client credentials: enterprise (the app's service account) or user (a managed or app user).
    #[field(label = "Subject type", select = ["enterprise", "user"])]
    pub box_subject_type: Option<String>,
    /// Client credentials: the enterprise id (Admin Console → Account & Billing) or the user id.
    #[field(label = "Subject id")]
    pub box_subject_id: Option<String>,
    /// Box folder id for this instance's files (the number in the folder's web URL); 0 is All Files.
    #[field(label = "Root folder id", default = "0")]
    pub root_folder_id: String,
    /// Bodies at least this large use a chunked upload session (Box: at least 20 MB, direct uploads at most 50 MB).
    #[field(label = "Upload session from (KiB)", default = 20480)]
    pub session_threshold_kib: u64,
    /// Override for tests.
    #[field(label = "API URL", url, credential_target, default = "https://api.box.com/2.0")]
    pub api_url: String,
    /// Override for tests.
    #[field(label = "Upload URL", url, credential_target, default = "https://upload.box.com/api/2.0")]
    pub upload_url: String,
    /// Override for tests (default: Box's token endpoint).
    #[field(label = "Token URL", url, credential_target)]
    pub token_url: Option<String>,
}

fn is_box_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_digit())
}

impl BoxConfig {
    pub(crate) fn auth(&self) -> Result<AuthMethod> {
        match self.auth_method.as_str() {
            "oauth" => Ok(AuthMethod::OAuth),
            "client_credentials" => Ok(AuthMethod::ClientCredentials),
            "jwt" => Err(StorageError::invalid_config(
                "field 'auth_method': JWT app auth is not supported by csal-box; enable Client Credentials Grant \
                 on the same Box app and use auth_method = client_credentials",
            )),
            other => Err(StorageError::invalid_config(format!(
                "field 'auth_method': '{other}' is not one of oauth, client_credentials"
            ))),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: &str| Err(StorageError::invalid_config(format!("field '{field}': {why}")));
        if self.client_id.trim().is_empty() {
            return bad("client_id", "the Box app's client id is required");
        }
        match self.auth()? {
            AuthMethod::OAuth => {
                if self.refresh_token.is_some() && self.client_secret.is_none() {
                    return bad("client_secret", "Box needs the client secret to refresh tokens");
                }
                if self.box_subject_type.is_some() || self.box_subject_id.is_some() {
                    return bad("box_subject_type", "only for auth_method = client_credentials");
                }
            }
            AuthMethod::ClientCredentials => {
                if self.client_secret.is_none() {
                    return bad("client_secret", "required for the Client Credentials Grant");
                }
                match self.box_subject_type.as_deref() {
                    Some("enterprise" | "user") => {}
                    _ => return bad("box_subject_type", "must be enterprise or user"),
                }
                match self.box_subject_id.as_deref() {
                    Some(id) if is_box_id(id) => {}
                    _ => return bad("box_subject_id", "the enterprise id or user id (digits) is required"),
                }
                if self.refresh_token.is_some() {
                    return bad("refresh_token", "not used with the Client Credentials Grant; remove it");
                }
            }
        }
        if !is_box_id(&self.root_folder_id) {
            return bad("root_folder_id", "must be a Box folder id (digits; \"0\" is the account root)");
        }
        let kib = self.session_threshold_kib;
        if kib == 0 || kib * 1024 > MAX_DIRECT_UPLOAD {
            return bad("session_threshold_kib", "must be between 1 and 48828 (Box direct uploads stop at 50 MB)");
        }
        csal_oauth::parse_refresh_token_expiry(self.refresh_token_expires_at.as_deref())?;
        self.timeouts()?;
        Ok(())
    }

    pub(crate) fn session_threshold(&self) -> usize {
        (self.session_threshold_kib * 1024) as usize
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<super::BoxConfig>();
    }
}
