use std::time::Duration;

use csal_core::{ConfigField, ExposeSecret, Result, SecretString, StorageError};

/// Config of a `mega` instance.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MegaConfig {
    pub email: String,
    pub password: SecretString,
    /// Folder (under the Cloud Drive root) that holds every object. Default `csal`.
    #[serde(default)]
    pub root: Option<String>,
    /// API base URL (tests, proxies). Default `https://g.api.mega.co.nz`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Request timeout in seconds (default 120).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for MegaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MegaConfig")
            .field("email", &self.email)
            .field("password", &"********")
            .field("root", &self.root)
            .field("api_url", &self.api_url)
            .finish()
    }
}

pub(crate) struct Resolved {
    pub email: String,
    pub password: SecretString,
    pub root: Vec<String>,
    pub api_url: String,
    pub timeout: Duration,
}

impl MegaConfig {
    pub(crate) fn resolve(&self) -> Result<Resolved> {
        if self.email.trim().is_empty() {
            return Err(StorageError::invalid_config("mega: email is empty"));
        }
        if self.password.expose_secret().is_empty() {
            return Err(StorageError::invalid_config("mega: password is empty"));
        }
        let api_url = self.api_url.clone().unwrap_or_else(|| "https://g.api.mega.co.nz".to_owned());
        if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
            return Err(StorageError::invalid_config("mega: api_url must start with http:// or https://"));
        }
        let root: Vec<String> =
            self.root.as_deref().unwrap_or("csal").split('/').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if root.iter().any(|s| s == "." || s == "..") {
            return Err(StorageError::invalid_config("mega: root must be a plain folder path like csal"));
        }
        Ok(Resolved {
            email: self.email.trim().to_lowercase(),
            password: self.password.clone(),
            root,
            api_url: api_url.trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(self.timeout_secs.unwrap_or(120).max(1)),
        })
    }
}

pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::text("email", "Account e-mail").required(),
    ConfigField::secret("password", "Password").required().help("MEGA account password (v2 accounts)."),
    ConfigField::path("root", "Root folder").default("\"csal\"").help("Folder under the Cloud Drive root."),
    ConfigField::url("api_url", "API URL override").help("Only for tests or proxies."),
    ConfigField::number("timeout_secs", "Request timeout (s)").default("120"),
];
