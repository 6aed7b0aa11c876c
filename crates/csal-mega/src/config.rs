use csal_core::{ExposeSecret, Result, SecretString, StorageError, Timeouts};

/// Config of a `mega` instance.
#[csal_core::config(
    provider = "mega",
    name = "MEGA",
    category = file_sync,
    description = "MEGA cloud drive with client-side AES encryption; e-mail + password login.",
    timeouts(connect = 15, read = 60, request = 120, request_alias = "timeout_secs"),
    tls
)]
#[derive(Clone)]
pub struct MegaConfig {
    /// The e-mail address the account logs in with.
    #[field(label = "Account e-mail")]
    pub email: String,
    /// MEGA account password (v2 accounts).
    #[field(label = "Password")]
    pub password: SecretString,
    /// Folder under the Cloud Drive root that holds every object.
    #[field(label = "Root folder", path, default = "csal")]
    pub root: String,
    /// Only for tests or proxies.
    #[field(label = "API URL", url, credential_target, default = "https://g.api.mega.co.nz")]
    pub api_url: String,
}

pub(crate) struct Resolved {
    pub email: String,
    pub password: SecretString,
    pub root: Vec<String>,
    pub api_url: String,
    pub timeouts: Timeouts,
    pub ca_file: Option<csal_core::tls::CaFile>,
}

impl MegaConfig {
    pub(crate) fn resolve(&self) -> Result<Resolved> {
        if self.email.trim().is_empty() {
            return Err(StorageError::invalid_config("mega: email is empty"));
        }
        if self.password.expose_secret().is_empty() {
            return Err(StorageError::invalid_config("mega: password is empty"));
        }
        let api_url = &self.api_url;
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(StorageError::invalid_config("mega: api_url must start with http:// or https://"));
        }
        let root: Vec<String> = self.root.split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if root.iter().any(|s| s == "." || s == "..") {
            return Err(StorageError::invalid_config("mega: root must be a plain folder path like csal"));
        }
        Ok(Resolved {
            email: self.email.trim().to_lowercase(),
            password: self.password.clone(),
            root,
            api_url: api_url.trim_end_matches('/').to_owned(),
            timeouts: self.timeouts()?,
            ca_file: self.trusted_ca()?,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<super::MegaConfig>();
    }
}
