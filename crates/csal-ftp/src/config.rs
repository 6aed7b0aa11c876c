use std::fmt;
use std::time::Duration;

use csal_core::{ConfigField, Result, SecretString, StorageError};

const DOC: &str = "https://github.com/csal-rs/csal/blob/main/docs/providers/ftp.md";

/// Transport security. Explicit TLS unless plain FTP is chosen by name:
/// plain FTP sends the password and every byte in clear text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FtpSecurity {
    /// Plain FTP: password and data in clear text (only when asked for).
    None,
    /// Explicit FTPS: `AUTH TLS` on the control connection, `PROT P` for data.
    #[default]
    ExplicitTls,
}

/// Config of an `ftp` instance.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtpConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub username: String,
    #[serde(default)]
    pub password: Option<SecretString>,
    #[serde(default)]
    pub security: FtpSecurity,
    /// Accept any TLS certificate (self-signed test servers). Default false.
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// Active mode (the server connects back to us). Default: passive.
    #[serde(default)]
    pub active_mode: bool,
    #[serde(default)]
    pub base_dir: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout_secs: u64,
}

fn default_port() -> u16 {
    21
}
fn default_max_connections() -> usize {
    4
}
fn default_connect_timeout() -> u64 {
    20
}
fn default_operation_timeout() -> u64 {
    60
}

impl fmt::Debug for FtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("security", &self.security)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("active_mode", &self.active_mode)
            .field("base_dir", &self.base_dir)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl FtpConfig {
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs.max(1))
    }
    pub(crate) fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.operation_timeout_secs.max(1))
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(StorageError::invalid_config(m.to_owned()).with_provider("ftp"));
        if self.host.trim().is_empty() {
            return bad("field 'host' is empty");
        }
        if self.port == 0 {
            return bad("field 'port' must be 1-65535");
        }
        if self.username.trim().is_empty() || self.username.contains(['\r', '\n']) {
            return bad("field 'username' is empty or has line breaks");
        }
        if self.base_dir.chars().any(|c| c.is_control()) {
            return bad("field 'base_dir' contains control characters");
        }
        if !(1..=64).contains(&self.max_connections) {
            return bad("field 'max_connections' must be 1-64");
        }
        Ok(())
    }
}

pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::text("host", "Host").required().help("Server name or IP address.").doc(DOC),
    ConfigField::number("port", "Port").default("21"),
    ConfigField::text("username", "User name").required(),
    ConfigField::secret("password", "Password"),
    ConfigField::select("security", "Security", &["explicit_tls", "none"])
        .default("\"explicit_tls\"")
        .help("explicit_tls = FTPS with AUTH TLS (the default); none = plain FTP, which sends the password and data in clear text.")
        .doc(DOC),
    ConfigField::bool("accept_invalid_certs", "Accept invalid TLS certificates")
        .default("false")
        .help("Trust any certificate (self-signed lab servers). Exposes the password to a man in the middle."),
    ConfigField::bool("active_mode", "Active mode")
        .default("false")
        .help("Passive mode (default) works through NAT and firewalls; active mode needs the server to reach us."),
    ConfigField::path("base_dir", "Base folder")
        .help("Folder for the objects; relative paths start at the login folder. Created when missing."),
    ConfigField::number("max_connections", "Max connections")
        .default("4")
        .help("Control connections opened at most; concurrent operations wait for a free one."),
    ConfigField::number("connect_timeout_secs", "Connect timeout (s)").default("20"),
    ConfigField::number("operation_timeout_secs", "Operation timeout (s)")
        .default("60")
        .help("Longest wait for one server reply or one chunk of data."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_the_default_and_plain_ftp_only_by_name() {
        let parse = |v: serde_json::Value| csal_core::parse_config::<FtpConfig>("ftp", &v).unwrap();
        let c = parse(serde_json::json!({"host": "h", "username": "u"}));
        assert_eq!(c.security, FtpSecurity::ExplicitTls);
        let c = parse(serde_json::json!({"host": "h", "username": "u", "security": "none"}));
        assert_eq!(c.security, FtpSecurity::None);
        let spec = FIELDS.iter().find(|f| f.key == "security").unwrap();
        assert_eq!(spec.default, Some("\"explicit_tls\""), "the form's default must match");
    }
}
