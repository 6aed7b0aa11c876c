use csal_core::{ConfigField, SecretString, StorageError};

/// How the `webdav` provider authenticates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DavAuth {
    /// HTTP Basic (use https: the password travels base64-encoded).
    #[default]
    Basic,
    /// HTTP Digest (RFC 7616, MD5); the password never travels.
    Digest,
    /// No credentials.
    None,
}

/// Config of a `webdav` instance.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebDavConfig {
    /// URL of the collection that is the root of this instance.
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    #[serde(default)]
    pub auth: DavAuth,
    /// Accept self-signed / invalid TLS certificates (default false).
    #[serde(default)]
    pub accept_invalid_certs: bool,
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    /// Longest wait for any single read from the server.
    #[serde(default)]
    pub read_timeout_secs: Option<u64>,
    /// Allow Basic credentials over `http://` to a host other than this
    /// machine (default false: refused).
    #[serde(default)]
    pub allow_insecure_basic: bool,
}

impl std::fmt::Debug for WebDavConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebDavConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| csal_core::secret::MASK))
            .field("auth", &self.auth)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .finish_non_exhaustive()
    }
}

/// Config of a `nextcloud` instance.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextcloudConfig {
    /// Server base URL, e.g. `https://cloud.example.com` (or with a sub-path).
    pub server_url: String,
    pub username: String,
    /// An app password (Settings → Security → Devices & sessions).
    pub app_password: SecretString,
    /// Chunk size of chunked uploads; objects larger than one chunk use
    /// chunked upload v2. Nextcloud wants 5..=5120 MiB.
    #[serde(default)]
    pub chunk_size_mb: Option<u64>,
    #[serde(default)]
    pub accept_invalid_certs: bool,
    #[serde(default)]
    pub connect_timeout_secs: Option<u64>,
    #[serde(default)]
    pub read_timeout_secs: Option<u64>,
    /// Allow the app password over `http://` to a host other than this
    /// machine (default false: refused).
    #[serde(default)]
    pub allow_insecure_basic: bool,
}

impl std::fmt::Debug for NextcloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextcloudConfig")
            .field("server_url", &self.server_url)
            .field("username", &self.username)
            .field("app_password", &csal_core::secret::MASK)
            .field("chunk_size_mb", &self.chunk_size_mb)
            .finish_non_exhaustive()
    }
}

pub(crate) const DEFAULT_CHUNK_MB: u64 = 10;

impl NextcloudConfig {
    pub(crate) fn chunk_size(&self) -> Result<usize, StorageError> {
        let mb = self.chunk_size_mb.unwrap_or(DEFAULT_CHUNK_MB);
        if !(5..=5120).contains(&mb) {
            return Err(StorageError::invalid_config("field 'chunk_size_mb' must be between 5 and 5120 (MiB)"));
        }
        Ok((mb as usize) * 1024 * 1024)
    }
}

pub(crate) const WEBDAV_FIELDS: &[ConfigField] = &[
    ConfigField::url("url", "Server URL")
        .required()
        .help("URL of the WebDAV collection used as the root, e.g. https://nas.example.com/dav/recordings/"),
    ConfigField::text("username", "Username").help("Empty for anonymous access."),
    ConfigField::secret("password", "Password"),
    ConfigField::select("auth", "Authentication", &["basic", "digest", "none"])
        .default("\"basic\"")
        .help("Basic needs https to keep the password private; Digest never sends it."),
    ConfigField::bool("accept_invalid_certs", "Accept invalid TLS certificates")
        .default("false")
        .help("Only for self-signed test servers: disables certificate checks."),
    ConfigField::number("connect_timeout_secs", "Connect timeout (s)").default("10"),
    ConfigField::number("read_timeout_secs", "Read timeout (s)")
        .default("60")
        .help("Longest wait for the server while reading a response."),
    ConfigField::bool("allow_insecure_basic", "Allow Basic over plain http").default("false").help(
        "Basic sends the password readable on the wire: refused over http:// to another machine unless this is on.",
    ),
];

pub(crate) const NEXTCLOUD_FIELDS: &[ConfigField] = &[
    ConfigField::url("server_url", "Server URL").required().help("e.g. https://cloud.example.com"),
    ConfigField::text("username", "Username").required().help("Your Nextcloud login name (user id)."),
    ConfigField::secret("app_password", "App password")
        .required()
        .help("Create one under Settings → Security → Devices & sessions.")
        .doc("https://docs.nextcloud.com/server/latest/user_manual/en/session_management.html#managing-devices"),
    ConfigField::number("chunk_size_mb", "Chunk size (MiB)")
        .default("10")
        .help("Objects larger than this are uploaded in chunks (5..5120).")
        .doc("https://docs.nextcloud.com/server/latest/developer_manual/client_apis/WebDAV/chunking.html"),
    ConfigField::bool("accept_invalid_certs", "Accept invalid TLS certificates").default("false"),
    ConfigField::number("connect_timeout_secs", "Connect timeout (s)").default("10"),
    ConfigField::number("read_timeout_secs", "Read timeout (s)").default("60"),
    ConfigField::bool("allow_insecure_basic", "Allow the password over plain http")
        .default("false")
        .help("Refused over http:// to another machine unless this is on: the app password would travel readable."),
];
