use std::time::Duration;

use csal_core::{ExposeSecret, Result, SecretString, StorageError};
use russh::keys::{HashAlg, PublicKey};

/// Config of an `sftp` instance.
#[csal_core::config(
    provider = "sftp",
    name = "SFTP (SSH)",
    category = network_protocol,
    description = "Files on an SSH server over SFTP, with host-key pinning, password or key login.",
    timeouts(connect = 20, read = 60, read_alias = "operation_timeout_secs")
)]
#[derive(Clone)]
pub struct SftpConfig {
    /// Server name or IP address.
    #[field(
        label = "Host",
        credential_target,
        doc_url = "https://github.com/csal-rs/csal/blob/main/docs/providers/sftp.md"
    )]
    pub host: String,
    /// SSH port.
    #[field(label = "Port", credential_target, default = 22)]
    pub port: u16,
    /// Login name on the server.
    #[field(label = "User name")]
    pub username: String,
    /// Password login. Leave empty when using a private key.
    #[field(label = "Password")]
    pub password: Option<SecretString>,
    /// OpenSSH or PEM private key text (ed25519, ECDSA, RSA). Takes precedence over the password.
    #[field(
        label = "Private key",
        secret_multiline,
        doc_url = "https://github.com/csal-rs/csal/blob/main/docs/providers/sftp.md"
    )]
    pub private_key: Option<SecretString>,
    /// Only for an encrypted private key.
    #[field(label = "Key passphrase")]
    pub private_key_passphrase: Option<SecretString>,
    /// The server's host key fingerprint (SHA256:...) or known_hosts line(s); connections to any other key are refused. Get it with `ssh-keyscan HOST | ssh-keygen -lf -`.
    #[field(
        label = "Host key",
        text,
        credential_target,
        doc_url = "https://github.com/csal-rs/csal/blob/main/docs/providers/sftp.md"
    )]
    pub host_key: Option<String>,
    /// Skip host key checking. Exposes the credentials to a man in the middle; for labs only.
    #[field(label = "Accept any host key (insecure)", credential_target, default = false)]
    pub insecure_accept_any_host_key: bool,
    /// Folder for the objects; relative paths start at the login folder. Created when missing.
    #[field(label = "Base folder", path, default = "")]
    pub base_dir: String,
}

/// What the server's host key must match.
#[derive(Debug, Clone)]
pub(crate) enum HostKeyPolicy {
    Pinned { fingerprints: Vec<String>, keys: Vec<PublicKey> },
    AcceptAny,
}

impl HostKeyPolicy {
    pub(crate) fn accepts(&self, key: &PublicKey) -> bool {
        match self {
            HostKeyPolicy::AcceptAny => true,
            HostKeyPolicy::Pinned { fingerprints, keys } => {
                let fp = key.fingerprint(HashAlg::Sha256).to_string();
                fingerprints.iter().any(|f| f == &fp) || keys.iter().any(|k| k.key_data() == key.key_data())
            }
        }
    }
}

pub(crate) enum Credentials {
    Password(SecretString),
    Key(std::sync::Arc<russh::keys::PrivateKey>),
}

impl SftpConfig {
    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs.max(1))
    }
    /// Longest wait for one SFTP reply (`read_timeout_secs`).
    pub(crate) fn operation_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_secs.max(1))
    }

    /// The base folder without a trailing slash ("." for the login directory).
    pub(crate) fn base(&self) -> String {
        let b = self.base_dir.trim();
        if b.is_empty() || b == "." {
            return ".".to_owned();
        }
        let trimmed = b.trim_end_matches('/');
        if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() }
    }

    pub(crate) fn validate(&self) -> Result<(HostKeyPolicy, Credentials)> {
        let bad = |m: &str| Err(StorageError::invalid_config(m.to_owned()).with_provider("sftp"));
        if self.host.trim().is_empty() {
            return bad("field 'host' is empty");
        }
        if self.port == 0 {
            return bad("field 'port' must be 1-65535");
        }
        if self.username.trim().is_empty() {
            return bad("field 'username' is empty");
        }
        if self.base_dir.chars().any(|c| c.is_control()) {
            return bad("field 'base_dir' contains control characters");
        }
        let credentials = match (&self.private_key, &self.password) {
            (Some(key), _) if !key.expose_secret().trim().is_empty() => {
                let pass = self.private_key_passphrase.as_ref().map(|p| p.expose_secret().to_owned());
                let key = russh::keys::decode_secret_key(key.expose_secret().trim(), pass.as_deref())
                    .map_err(|_| {
                        StorageError::invalid_config(
                            "field 'private_key' is not an OpenSSH/PEM private key, or 'private_key_passphrase' is wrong",
                        )
                        .with_provider("sftp")
                    })?;
                Credentials::Key(std::sync::Arc::new(key))
            }
            (_, Some(pw)) if !pw.expose_secret().is_empty() => Credentials::Password(pw.clone()),
            _ => return bad("set 'password' or 'private_key'"),
        };
        let policy = match self.host_key.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => parse_host_keys(text)?,
            None if self.insecure_accept_any_host_key => HostKeyPolicy::AcceptAny,
            None => {
                return bad("field 'host_key' is required (the server's SHA256 fingerprint or known_hosts line); \
                     set 'insecure_accept_any_host_key': true only to skip the check");
            }
        };
        Ok((policy, credentials))
    }
}

/// Parse pinned keys: lines of `SHA256:...` fingerprints, known_hosts lines
/// (`[host]:port ssh-ed25519 AAAA...`) or public key lines (`ssh-ed25519 AAAA... comment`).
fn parse_host_keys(text: &str) -> Result<HostKeyPolicy> {
    let mut fingerprints = Vec::new();
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if let Some(fp) = line.strip_prefix("SHA256:") {
            fingerprints.push(format!("SHA256:{}", fp.trim().trim_end_matches('=')));
            continue;
        }
        // known_hosts markers: `@revoked` says the key must NOT be trusted,
        // `@cert-authority` names a CA (we do not check certificates); taking
        // either as a pin would trust exactly the wrong key.
        if let Some(marker) = line.split_whitespace().next().filter(|t| t.starts_with('@')) {
            let why = match marker {
                "@revoked" => "a '@revoked' line marks a key that must not be trusted; it cannot be a pin",
                "@cert-authority" => "'@cert-authority' lines (SSH certificates) are not supported; pin the host key",
                _ => "unknown known_hosts marker",
            };
            return Err(StorageError::invalid_config(format!("field 'host_key': {why}")).with_provider("sftp"));
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let algo = tokens.iter().position(|t| {
            t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-") || t.starts_with("sk-") || t.starts_with("rsa-")
        });
        let key = algo
            .and_then(|i| tokens.get(i + 1))
            .and_then(|b64| russh::keys::parse_public_key_base64(b64).ok())
            .ok_or_else(|| {
            StorageError::invalid_config(
                "field 'host_key': expected 'SHA256:...' fingerprints or known_hosts / public key lines",
            )
            .with_provider("sftp")
        })?;
        keys.push(key);
    }
    if fingerprints.is_empty() && keys.is_empty() {
        return Err(StorageError::invalid_config("field 'host_key' holds no key").with_provider("sftp"));
    }
    Ok(HostKeyPolicy::Pinned { fingerprints, keys })
}

#[cfg(test)]
mod tests {
    use super::*;
    use csal_core::ErrorKind;

    fn cfg(v: serde_json::Value) -> SftpConfig {
        csal_core::parse_config("sftp", &v).unwrap()
    }

    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<SftpConfig>();
    }

    #[test]
    fn missing_host_key_is_refused_unless_insecure_opt_in() {
        let c = cfg(serde_json::json!({"host": "h", "username": "u", "password": "p"}));
        let e = c.validate().err().unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.message().contains("host_key"));
        let c = cfg(
            serde_json::json!({"host": "h", "username": "u", "password": "p", "insecure_accept_any_host_key": true}),
        );
        assert!(matches!(c.validate().unwrap().0, HostKeyPolicy::AcceptAny));
    }

    #[test]
    fn bad_private_key_names_the_field_without_echoing_it() {
        let c = cfg(serde_json::json!({"host": "h", "username": "u", "private_key": "not-a-key-secretvalue",
            "insecure_accept_any_host_key": true}));
        let e = c.validate().err().unwrap();
        assert!(e.message().contains("private_key") && !e.to_string().contains("secretvalue"));
        assert!(!format!("{c:?}").contains("secretvalue"));
    }

    #[test]
    fn host_key_forms_parse() {
        let line = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        let p = parse_host_keys(&format!("SHA256:abc\n{line}")).unwrap();
        match p {
            HostKeyPolicy::Pinned { fingerprints, keys } => {
                assert_eq!(fingerprints, vec!["SHA256:abc".to_owned()]);
                assert_eq!(keys.len(), 1);
            }
            HostKeyPolicy::AcceptAny => panic!("pinned expected"),
        }
        assert_eq!(parse_host_keys("garbage").unwrap_err().kind(), ErrorKind::InvalidConfig);
    }

    #[test]
    fn revoked_and_ca_lines_are_never_pins() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        for (marker, says) in [("@revoked", "@revoked"), ("@cert-authority", "cert-authority")] {
            // Alone, or hidden among good lines: the whole field is refused.
            for text in [format!("{marker} [127.0.0.1]:2222 {key}"), format!("SHA256:abc\n{marker} * {key}")] {
                let e = parse_host_keys(&text).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::InvalidConfig);
                assert!(e.message().contains("host_key") && e.message().contains(says), "{e}");
            }
        }
    }
}
