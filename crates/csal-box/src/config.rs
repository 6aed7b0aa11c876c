use csal_core::{ConfigField, Result, SecretString, StorageError};

/// Box refuses upload sessions for files under 20 MB, and direct uploads
/// above 50 MB: the default switches to a session at 20 MiB.
pub const DEFAULT_SESSION_THRESHOLD_KIB: u64 = 20 * 1024;
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
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxConfig {
    /// `oauth` (default) or `client_credentials`.
    pub auth_method: Option<String>,
    /// Client id of the Box app (Developer Console → Configuration).
    pub client_id: String,
    /// Client secret of the Box app.
    pub client_secret: Option<SecretString>,
    /// OAuth: refresh token from the authorization-code flow.
    pub refresh_token: Option<SecretString>,
    /// OAuth: optional current access token.
    pub access_token: Option<SecretString>,
    /// OAuth: when the refresh token expires (RFC 3339; Box: 60 days after
    /// issue, a new one on every refresh). Kept current by the token store.
    pub refresh_token_expires_at: Option<String>,
    /// Client credentials: `enterprise` (the service account) or `user`.
    pub box_subject_type: Option<String>,
    /// Client credentials: the enterprise id or the user id.
    pub box_subject_id: Option<String>,
    /// Folder that holds this instance's objects (default "0", the root).
    pub root_folder_id: Option<String>,
    /// Bodies of at least this many KiB go through an upload session
    /// (default 20480; Box refuses sessions under 20 MB).
    pub session_threshold_kib: Option<u64>,
    /// API root (default `https://api.box.com/2.0`); for tests.
    pub api_url: Option<String>,
    /// Upload root (default `https://upload.box.com/api/2.0`); for tests.
    pub upload_url: Option<String>,
    /// Token endpoint (default `https://api.box.com/oauth2/token`).
    pub token_url: Option<String>,
    /// Seconds without progress before a call fails (default 60).
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for BoxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxConfig")
            .field("auth_method", &self.auth_method)
            .field("client_id", &self.client_id)
            .field("box_subject_type", &self.box_subject_type)
            .field("box_subject_id", &self.box_subject_id)
            .field("root_folder_id", &self.root_folder_id)
            .finish_non_exhaustive()
    }
}

fn is_box_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_digit())
}

impl BoxConfig {
    pub(crate) fn auth(&self) -> Result<AuthMethod> {
        match self.auth_method.as_deref().unwrap_or("oauth") {
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
        if let Some(root) = &self.root_folder_id {
            if !is_box_id(root) {
                return bad("root_folder_id", "must be a Box folder id (digits; \"0\" is the account root)");
            }
        }
        if let Some(kib) = self.session_threshold_kib {
            if kib == 0 || kib * 1024 > MAX_DIRECT_UPLOAD {
                return bad("session_threshold_kib", "must be between 1 and 48828 (Box direct uploads stop at 50 MB)");
            }
        }
        csal_oauth::parse_refresh_token_expiry(self.refresh_token_expires_at.as_deref())?;
        if self.timeout_secs == Some(0) {
            return bad("timeout_secs", "must be at least 1");
        }
        for (field, url) in
            [("api_url", &self.api_url), ("upload_url", &self.upload_url), ("token_url", &self.token_url)]
        {
            if let Some(u) = url {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    return bad(field, "must be an http(s) URL");
                }
            }
        }
        Ok(())
    }

    pub(crate) fn session_threshold(&self) -> usize {
        (self.session_threshold_kib.unwrap_or(DEFAULT_SESSION_THRESHOLD_KIB) * 1024) as usize
    }

    pub(crate) fn root_folder(&self) -> String {
        self.root_folder_id.clone().unwrap_or_else(|| "0".to_owned())
    }
}

const DOC_APP: &str = "https://developer.box.com/guides/authentication/oauth2/oauth2-setup/";
const DOC_CCG: &str = "https://developer.box.com/guides/authentication/client-credentials/client-credentials-setup/";
const DOC_TOKENS: &str = "https://developer.box.com/guides/authentication/tokens/refresh/";

pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::select("auth_method", "Authentication", &["oauth", "client_credentials"])
        .default("\"oauth\"")
        .help("oauth: a user's refresh token. client_credentials: a server app (Client Credentials Grant).")
        .doc(DOC_CCG),
    ConfigField::text("client_id", "Client id")
        .required()
        .help("Developer Console → your app → Configuration → OAuth 2.0 Credentials.")
        .doc(DOC_APP),
    ConfigField::secret("client_secret", "Client secret")
        .help("Same page as the client id. Needed to refresh tokens and for client credentials.")
        .doc(DOC_APP),
    ConfigField::secret("refresh_token", "Refresh token")
        .help("OAuth: from the authorization-code flow. Single use: every refresh replaces it (saved automatically).")
        .doc(DOC_TOKENS),
    ConfigField::secret("access_token", "Access token").help("Optional; refreshed automatically.").doc(DOC_TOKENS),
    ConfigField::text("refresh_token_expires_at", "Refresh token expires at")
        .help("RFC 3339 time; Box refresh tokens last 60 days. Set on each refresh. Health warns a week before."),
    ConfigField::select("box_subject_type", "Subject type", &["enterprise", "user"])
        .help("Client credentials: enterprise (the app's service account) or user (a managed or app user).")
        .doc(DOC_CCG),
    ConfigField::text("box_subject_id", "Subject id")
        .help("Client credentials: the enterprise id (Admin Console → Account & Billing) or the user id.")
        .doc(DOC_CCG),
    ConfigField::text("root_folder_id", "Root folder id")
        .default("\"0\"")
        .help("Box folder id for this instance's files (the number in the folder's web URL); 0 is All Files."),
    ConfigField::number("session_threshold_kib", "Upload session from (KiB)").default("20480").help(
        "Bodies at least this large use a chunked upload session (Box: at least 20 MB, direct uploads at most 50 MB).",
    ),
    ConfigField::url("api_url", "API URL").help("Override for tests (default https://api.box.com/2.0)."),
    ConfigField::url("upload_url", "Upload URL").help("Override for tests (default https://upload.box.com/api/2.0)."),
    ConfigField::url("token_url", "Token URL").help("Override for tests (default https://api.box.com/oauth2/token)."),
    ConfigField::number("timeout_secs", "Timeout (s)")
        .default("60")
        .help("Seconds without progress before a call fails."),
];
