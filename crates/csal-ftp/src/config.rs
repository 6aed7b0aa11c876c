use std::time::Duration;

use csal_core::{Result, SecretString, StorageError};

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
#[csal_core::config(
    provider = "ftp",
    name = "FTP / FTPS",
    category = network_protocol,
    description = "Files on an FTP server, plain or with explicit TLS (FTPS), passive or active mode.",
    timeouts(connect = 20, read = 60, read_alias = "operation_timeout_secs"),
    tls
)]
#[derive(Clone)]
pub struct FtpConfig {
    /// Server name or IP address.
    #[field(
        label = "Host",
        credential_target,
        doc_url = "https://github.com/csal-rs/csal/blob/main/docs/providers/ftp.md"
    )]
    pub host: String,
    /// Control-connection port.
    #[field(label = "Port", credential_target, default = 21)]
    pub port: u16,
    /// Login name; `anonymous` for anonymous FTP.
    #[field(label = "User name")]
    pub username: String,
    /// Login password; empty for servers that ask none.
    #[field(label = "Password")]
    pub password: Option<SecretString>,
    /// explicit_tls = FTPS with AUTH TLS (the default); none = plain FTP, which sends the password and data in clear text.
    #[field(
        label = "Security",
        select = ["explicit_tls", "none"],
        default = "explicit_tls",
        credential_target,
        doc_url = "https://github.com/csal-rs/csal/blob/main/docs/providers/ftp.md"
    )]
    pub security: FtpSecurity,
    /// Trust any certificate (self-signed lab servers). Exposes the password to a man in the middle.
    #[field(label = "Accept invalid TLS certificates", credential_target, default = false)]
    pub accept_invalid_certs: bool,
    /// Passive mode (default) works through NAT and firewalls; active mode needs the server to reach us.
    #[field(label = "Active mode", default = false)]
    pub active_mode: bool,
    /// Folder for the objects; relative paths start at the login folder. Created when missing.
    #[field(label = "Base folder", path, default = "")]
    pub base_dir: String,
    /// Control connections opened at most; concurrent operations wait for a free one.
    #[field(label = "Max connections", default = 4)]
    pub max_connections: usize,
}

impl FtpConfig {
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs.max(1))
    }
    /// Longest wait for one server reply or one chunk of data (`read_timeout_secs`).
    pub(crate) fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_secs.max(1))
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

#[cfg(test)]
mod tests {
    use super::*;
    use csal_core::ConfigSpec;

    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<FtpConfig>();
    }

    #[test]
    fn tls_is_the_default_and_plain_ftp_only_by_name() {
        let parse = |v: serde_json::Value| csal_core::parse_config::<FtpConfig>("ftp", &v).unwrap();
        let c = parse(serde_json::json!({"host": "h", "username": "u"}));
        assert_eq!(c.security, FtpSecurity::ExplicitTls);
        let c = parse(serde_json::json!({"host": "h", "username": "u", "security": "none"}));
        assert_eq!(c.security, FtpSecurity::None);
        let spec = FtpConfig::FIELDS.iter().find(|f| f.key == "security").unwrap();
        assert_eq!(spec.default, Some("\"explicit_tls\""), "the form's default must match");
    }
}
