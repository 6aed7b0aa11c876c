//! Secrets at rest: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`) under
//! a 32-byte master key, random 24-byte nonces.
//!
//! A sealed value is the text `v2:<key id>:<base64(nonce || ciphertext+tag)>`
//! (`v1:<base64>`, without the key id, is what catalogs before key ids
//! wrote; it is still read). In a module's `config_json` it sits as
//! `{"$enc": "v2:..."}` in place of the secret field. The associated data
//! binds each ciphertext to its place (module id + field, or setting key),
//! so ciphertexts cannot be swapped between rows or fields.
//!
//! The key id names the master key a value was sealed with (16 hex digits
//! of SHA-256 over a fixed label and the key: it identifies the key without
//! revealing it), so a value sealed under another key is reported as such
//! rather than as a corrupt value.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use csal_core::{ExposeSecret, Result, SecretString, StorageError};
use sha2::Digest;

/// Environment variable holding the master key (base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "CSAL_MASTER_KEY";

const V1_PREFIX: &str = "v1:";
const V2_PREFIX: &str = "v2:";
/// Domain label of the key id hash.
const KEY_ID_LABEL: &[u8] = b"csal-catalog master key id v1\0";
const NONCE_LEN: usize = 24;

/// Where the master key comes from.
#[derive(Debug, Clone)]
pub enum MasterKey {
    /// `CSAL_MASTER_KEY` (base64 of 32 bytes) if set; otherwise this key file,
    /// created with a fresh random key and mode 0600 on first use.
    FromEnvOrFile(PathBuf),
    /// A key given directly (base64 of 32 bytes).
    Explicit(SecretString),
}

impl MasterKey {
    /// A fresh random key, base64 encoded (for `Explicit` or a key file).
    pub fn generate() -> Result<SecretString> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|_| StorageError::permanent("the operating system random generator failed"))?;
        Ok(SecretString::from(B64.encode(key)))
    }

    /// The key file next to an SQLite catalog (`<file>.key`), or `None`
    /// for PostgreSQL, where every node must get the same key explicitly.
    pub fn default_file_for(catalog_url: &str) -> Option<PathBuf> {
        let loc = csal_sql::DbLocation::parse(catalog_url, None, true).ok()?;
        loc.sqlite_path().map(|p| PathBuf::from(format!("{p}.key")))
    }

    pub(crate) fn load(&self) -> Result<Cipher> {
        match self {
            MasterKey::Explicit(s) => Cipher::from_base64(s.expose_secret(), "the explicit master key"),
            MasterKey::FromEnvOrFile(path) => match std::env::var(MASTER_KEY_ENV) {
                Ok(v) if !v.trim().is_empty() => Cipher::from_base64(&v, MASTER_KEY_ENV),
                _ => load_or_create_key_file(path),
            },
        }
    }
}

fn load_or_create_key_file(path: &Path) -> Result<Cipher> {
    let what = format!("master key file {}", path.display());
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            return Cipher::from_base64(&text, &what);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(key_file_error(&what, "cannot be read", e)),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| key_file_error(&what, "folder cannot be created", e))?;
    }
    let key = MasterKey::generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(format!("{}\n", key.expose_secret()).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| key_file_error(&what, "cannot be written", e))?;
            tracing::info!(path = %path.display(), "created a new catalog master key file (mode 0600); back it up");
            Cipher::from_base64(key.expose_secret(), &what)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(|e| key_file_error(&what, "cannot be read", e))?;
            Cipher::from_base64(&text, &what)
        }
        Err(e) => Err(key_file_error(&what, "cannot be created", e)),
    }
}

fn key_file_error(what: &str, problem: &str, e: std::io::Error) -> StorageError {
    let kind = StorageError::from(std::io::Error::new(e.kind(), "")).kind();
    StorageError::new(kind, format!("{what} {problem}: {}", e.kind())).with_source(e)
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "master key file is readable by group or others; chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The loaded master key.
pub(crate) struct Cipher {
    aead: XChaCha20Poly1305,
    key_id: String,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(********)")
    }
}

impl Cipher {
    pub(crate) fn from_base64(text: &str, source: &str) -> Result<Self> {
        let bytes = B64.decode(text.trim()).map_err(|_| {
            StorageError::invalid_config(format!("{source} is not valid base64 (expected 32 random bytes, base64)"))
        })?;
        if bytes.len() != 32 {
            return Err(StorageError::invalid_config(format!(
                "{source} decodes to {} bytes; a master key is exactly 32 bytes (base64)",
                bytes.len()
            )));
        }
        let aead = XChaCha20Poly1305::new_from_slice(&bytes)
            .map_err(|_| StorageError::invalid_config(format!("{source} has the wrong length")))?;
        let digest = sha2::Sha256::new().chain_update(KEY_ID_LABEL).chain_update(&bytes).finalize();
        let key_id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Cipher { aead, key_id })
    }

    /// The id of this key (safe to show and store).
    pub(crate) fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key id a sealed value names (`None` for `v1` values, which
    /// carry none).
    pub(crate) fn key_id_of(sealed: &str) -> Option<&str> {
        sealed.strip_prefix(V2_PREFIX)?.split_once(':').map(|(id, _)| id)
    }

    pub(crate) fn seal(&self, plaintext: &str, aad: &str) -> Result<String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|_| StorageError::permanent("the operating system random generator failed"))?;
        let ct = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: aad.as_bytes() })
            .map_err(|_| StorageError::permanent("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!("{V2_PREFIX}{}:{}", self.key_id, B64.encode(out)))
    }

    /// Decrypt; a wrong key or a tampered value is an `Auth` error that says so.
    pub(crate) fn open(&self, sealed: &str, aad: &str, what: &str) -> Result<String> {
        let body = match (sealed.strip_prefix(V1_PREFIX), sealed.strip_prefix(V2_PREFIX)) {
            (Some(body), _) => body,
            (None, Some(rest)) => {
                let (key_id, body) = rest
                    .split_once(':')
                    .ok_or_else(|| StorageError::invalid_config(format!("{what}: encrypted value has no key id")))?;
                if key_id != self.key_id {
                    return Err(StorageError::auth(format!(
                        "cannot decrypt {what}: the master key does not match (the value was sealed under key \
                         {key_id}, this node has key {}; check {MASTER_KEY_ENV} or the key file: after a rotation \
                         every node needs the new key)",
                        self.key_id
                    )));
                }
                body
            }
            (None, None) => {
                return Err(StorageError::invalid_config(format!(
                    "{what}: encrypted value has an unknown format version"
                )));
            }
        };
        let raw = B64
            .decode(body)
            .map_err(|_| StorageError::invalid_config(format!("{what}: encrypted value is not valid base64")))?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(StorageError::invalid_config(format!("{what}: encrypted value is truncated")));
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let plain =
            self.aead.decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() }).map_err(|_| {
                StorageError::auth(format!(
                    "cannot decrypt {what}: the master key does not match the one the catalog was encrypted with \
                     (check {MASTER_KEY_ENV} or the key file)"
                ))
            })?;
        String::from_utf8(plain).map_err(|_| StorageError::integrity(format!("{what}: decrypted value is not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_wrong_key() {
        let k1 = Cipher::from_base64(MasterKey::generate().unwrap().expose_secret(), "k1").unwrap();
        let k2 = Cipher::from_base64(MasterKey::generate().unwrap().expose_secret(), "k2").unwrap();
        let sealed = k1.seal("hunter2", "a").unwrap();
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, k1.seal("hunter2", "a").unwrap(), "nonces must differ");
        assert_eq!(k1.open(&sealed, "a", "x").unwrap(), "hunter2");
        let e = k2.open(&sealed, "a", "x").unwrap_err();
        assert_eq!(e.kind(), csal_core::ErrorKind::Auth);
        assert!(e.message().contains("master key does not match"));
        assert_eq!(k1.open(&sealed, "b", "x").unwrap_err().kind(), csal_core::ErrorKind::Auth);
    }

    #[test]
    fn sealed_values_name_their_key_and_v1_values_still_open() {
        let k1 = Cipher::from_base64(MasterKey::generate().unwrap().expose_secret(), "k1").unwrap();
        let k2 = Cipher::from_base64(MasterKey::generate().unwrap().expose_secret(), "k2").unwrap();
        assert_ne!(k1.key_id(), k2.key_id());
        assert_eq!(k1.key_id().len(), 16);
        let sealed = k1.seal("hunter2", "a").unwrap();
        assert_eq!(Cipher::key_id_of(&sealed), Some(k1.key_id()));
        let e = k2.open(&sealed, "a", "field 'x'").unwrap_err();
        assert!(e.message().contains(k1.key_id()) && e.message().contains(k2.key_id()), "{e}");
        // A value written before key ids: same AEAD, no id.
        let v1 = format!("v1:{}", sealed.rsplit_once(':').unwrap().1);
        assert_eq!(Cipher::key_id_of(&v1), None);
        assert_eq!(k1.open(&v1, "a", "x").unwrap(), "hunter2");
    }

    #[test]
    fn bad_keys_are_refused_without_echo() {
        let e = Cipher::from_base64("c2hvcnQ=", "K").unwrap_err();
        assert!(e.message().contains("32 bytes") && !e.message().contains("c2hvcnQ"));
        assert!(Cipher::from_base64("***", "K").is_err());
    }

    #[test]
    fn key_file_is_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cat.key");
        let a = load_or_create_key_file(&path).unwrap();
        let b = load_or_create_key_file(&path).unwrap();
        let sealed = a.seal("x", "y").unwrap();
        assert_eq!(b.open(&sealed, "y", "z").unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
