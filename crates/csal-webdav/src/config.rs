use csal_core::{SecretString, StorageError};

/// How the `webdav` provider authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DavAuth {
    /// HTTP Basic (use https: the password travels base64-encoded).
    Basic,
    /// HTTP Digest (RFC 7616, MD5); the password never travels.
    Digest,
    /// No credentials.
    None,
}

/// Config of a `webdav` instance.
#[csal_core::config(
    provider = "webdav",
    name = "WebDAV",
    category = network_protocol,
    description = "Any WebDAV server (Apache mod_dav, nginx, wsgidav, NAS boxes); Basic or Digest auth.",
    timeouts(connect = 10, read = 60),
    tls
)]
#[derive(Clone)]
pub struct WebDavConfig {
    /// URL of the WebDAV collection used as the root, e.g. https://nas.example.com/dav/recordings/
    #[field(label = "Server URL", url, credential_target)]
    pub url: String,
    /// Empty for anonymous access.
    #[field(label = "Username")]
    pub username: Option<String>,
    /// Password (a Nextcloud app password, for example).
    #[field(label = "Password")]
    pub password: Option<SecretString>,
    /// Basic needs https to keep the password private; Digest never sends it.
    #[field(label = "Authentication", select = ["basic", "digest", "none"], default = "basic", credential_target)]
    pub auth: DavAuth,
    /// Only for self-signed test servers: disables certificate checks.
    #[field(label = "Accept invalid TLS certificates", credential_target, default = false)]
    pub accept_invalid_certs: bool,
    /// Basic sends the password readable on the wire: refused over http:// to
    /// another machine unless this is on.
    #[field(label = "Allow Basic over plain http", credential_target, default = false)]
    pub allow_insecure_basic: bool,
}

/// Config of a `nextcloud` instance.
#[csal_core::config(
    provider = "nextcloud",
    name = "Nextcloud",
    category = file_sync,
    description = "Nextcloud (or ownCloud) files over WebDAV with an app password; chunked upload for large objects.",
    timeouts(connect = 10, read = 60),
    tls
)]
#[derive(Clone)]
pub struct NextcloudConfig {
    /// Server base URL, e.g. https://cloud.example.com (or with a sub-path).
    #[field(label = "Server URL", url, credential_target)]
    pub server_url: String,
    /// Your Nextcloud login name (user id).
    #[field(label = "Username")]
    pub username: String,
    /// Create one under Settings → Security → Devices & sessions.
    #[field(
        label = "App password",
        doc_url = "https://docs.nextcloud.com/server/latest/user_manual/en/session_management.html#managing-devices"
    )]
    pub app_password: SecretString,
    /// Objects larger than this are uploaded in chunks (chunked upload v2; 5..5120).
    #[field(
        label = "Chunk size (MiB)",
        default = 10,
        doc_url = "https://docs.nextcloud.com/server/latest/developer_manual/client_apis/WebDAV/chunking.html"
    )]
    pub chunk_size_mb: u64,
    /// Only for self-signed test servers: disables certificate checks.
    #[field(label = "Accept invalid TLS certificates", credential_target, default = false)]
    pub accept_invalid_certs: bool,
    /// Refused over http:// to another machine unless this is on: the app
    /// password would travel readable.
    #[field(label = "Allow the password over plain http", credential_target, default = false)]
    pub allow_insecure_basic: bool,
}

impl NextcloudConfig {
    pub(crate) fn chunk_size(&self) -> Result<usize, StorageError> {
        let mb = self.chunk_size_mb;
        if !(5..=5120).contains(&mb) {
            return Err(StorageError::invalid_config("field 'chunk_size_mb' must be between 5 and 5120 (MiB)"));
        }
        Ok((mb as usize) * 1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_agree_with_structs() {
        csal_core::spec::assert_spec_agrees::<WebDavConfig>();
        csal_core::spec::assert_spec_agrees::<NextcloudConfig>();
    }
}
