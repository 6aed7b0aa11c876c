use csal_core::{ExposeSecret, Result, SecretString, StorageError, Timeouts};

/// Config of a `pcloud` instance.
#[csal_core::config(
    provider = "pcloud",
    name = "pCloud",
    category = file_sync,
    description = "pCloud (US or EU region) through its HTTP JSON API; OAuth token or username/password.",
    timeouts(connect = 15, read = 60, request = 120, request_alias = "timeout_secs"),
    tls
)]
#[derive(Clone)]
pub struct PcloudConfig {
    /// Where the account lives: us = api.pcloud.com, eu = eapi.pcloud.com.
    #[field(
        label = "Data region",
        select = ["us", "eu"],
        default = "us",
        doc_url = "https://docs.pcloud.com/methods/intro/"
    )]
    pub region: String,
    /// Only for tests or proxies; replaces the region's host.
    #[field(label = "API URL override", url, credential_target)]
    pub api_url: Option<String>,
    /// Folder that holds every object.
    #[field(label = "Root folder", path, default = "/csal")]
    pub root: String,
    /// Token from pCloud's OAuth 2 flow. Use this or username/password.
    #[field(label = "OAuth access token", doc_url = "https://docs.pcloud.com/methods/oauth_2.0/authorize.html")]
    pub access_token: Option<SecretString>,
    /// Account e-mail, for username/password login.
    #[field(label = "Account e-mail")]
    pub username: Option<String>,
    /// For username/password login.
    #[field(label = "Password")]
    pub password: Option<SecretString>,
    /// Files up to this size go through one uploadfile; larger ones through an upload session in parts of this size.
    #[field(label = "Upload part size (bytes)", default = 8388608)]
    pub part_size: u64,
}

/// How the client authenticates.
#[derive(Clone)]
pub(crate) enum Credentials {
    Token(SecretString),
    Login { username: String, password: SecretString },
}

pub(crate) struct Resolved {
    pub api_url: String,
    pub root: String,
    pub credentials: Credentials,
    pub timeouts: Timeouts,
    pub part_size: usize,
    pub ca_file: Option<csal_core::tls::CaFile>,
}

impl PcloudConfig {
    pub(crate) fn resolve(&self) -> Result<Resolved> {
        let api_url = match (&self.api_url, self.region.as_str()) {
            (Some(url), _) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(StorageError::invalid_config("pcloud: api_url must start with http:// or https://"));
                }
                url.trim_end_matches('/').to_owned()
            }
            (None, "us") => "https://api.pcloud.com".to_owned(),
            (None, "eu") => "https://eapi.pcloud.com".to_owned(),
            (None, other) => {
                return Err(StorageError::invalid_config(format!(
                    "pcloud: region must be 'us' or 'eu', not {other:?}"
                )));
            }
        };
        let root = format!("/{}", self.root.trim_matches('/'));
        if root.split('/').any(|s| s == ".." || s == ".") || root.contains('\\') {
            return Err(StorageError::invalid_config("pcloud: root must be a plain folder path like /csal"));
        }
        let nonblank = |s: &SecretString| !s.expose_secret().is_empty();
        let credentials = match (&self.access_token, &self.username, &self.password) {
            (Some(t), None, None) if nonblank(t) => Credentials::Token(t.clone()),
            (None, Some(u), Some(p)) if !u.is_empty() && nonblank(p) => {
                Credentials::Login { username: u.clone(), password: p.clone() }
            }
            _ => {
                return Err(StorageError::invalid_config(
                    "pcloud: set either access_token, or username and password (not both)",
                ));
            }
        };
        let part_size = self.part_size;
        if !(64 * 1024..=1024 * 1024 * 1024).contains(&part_size) {
            return Err(StorageError::invalid_config("pcloud: part_size must be between 64 KiB and 1 GiB"));
        }
        Ok(Resolved {
            api_url,
            root,
            credentials,
            timeouts: self.timeouts()?,
            part_size: part_size as usize,
            ca_file: self.trusted_ca()?,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<super::PcloudConfig>();
    }
}
