//! The trust roots of every TLS connection CSAL makes (feature `tls`).
//!
//! One policy for all providers: the operating system's certificate store
//! (what `rustls-native-certs` reads: `SSL_CERT_FILE` / `SSL_CERT_DIR`, else
//! the distribution's bundle; on macOS and Windows the system keychain /
//! store), plus the certificates of a provider's `ca_file` (PEM) added to
//! them. The OS store is what administrators already maintain (a company CA
//! installed there works everywhere); `ca_file` is for a private CA that is
//! not installed system-wide (a lab MinIO, an internal FTPS server).
//!
//! [`CaFile::load`] checks the file when a module is built, so a missing,
//! unreadable or non-PEM file is an `InvalidConfig` error naming the field,
//! not a handshake failure at the first request.

use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::{Result, StorageError};

/// The config key every TLS-using provider gives its extra trust roots under.
pub const CA_FILE_FIELD: &str = "ca_file";

/// The certificates of a `ca_file`, read and checked.
#[derive(Clone)]
pub struct CaFile {
    path: String,
    pem: Arc<Vec<u8>>,
    certificates: Arc<Vec<CertificateDer<'static>>>,
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFile").field("path", &self.path).field("certificates", &self.certificates.len()).finish()
    }
}

impl CaFile {
    /// Read `path` (PEM, one or more `CERTIFICATE` blocks). Errors are
    /// `InvalidConfig` naming the `ca_file` field and the path.
    pub fn load(path: &str) -> Result<CaFile> {
        CaFile::load_as(CA_FILE_FIELD, path)
    }

    /// [`CaFile::load`], naming `field` in errors (`sslrootcert` of a database URL).
    pub fn load_as(field: &str, path: &str) -> Result<CaFile> {
        let path = path.trim();
        let invalid = |why: String| StorageError::invalid_config(format!("field '{field}': {why} ({path})"));
        if path.is_empty() {
            return Err(invalid("empty path".into()));
        }
        let pem = std::fs::read(path).map_err(|e| invalid(format!("cannot read the CA file: {}", e.kind())))?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("not a PEM certificate file: {e}")))?;
        if certificates.is_empty() {
            return Err(invalid("no PEM CERTIFICATE block in the CA file".into()));
        }
        // Each one must be usable as a trust anchor (a parseable X.509 certificate).
        let mut store = RootCertStore::empty();
        for cert in &certificates {
            store.add(cert.clone()).map_err(|e| invalid(format!("a certificate in the CA file is not usable: {e}")))?;
        }
        Ok(CaFile { path: path.to_owned(), pem: Arc::new(pem), certificates: Arc::new(certificates) })
    }

    /// [`CaFile::load`] of an optional, possibly blank, config value.
    pub fn from_config(value: Option<&str>) -> Result<Option<CaFile>> {
        value.filter(|v| !v.trim().is_empty()).map(CaFile::load).transpose()
    }

    /// The certificates, DER encoded.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certificates
    }

    /// The file's bytes as read (for clients that take PEM).
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// Where the certificates were read from (for error messages).
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// The operating system's trust roots, read once per process. Certificates
/// the store holds but rustls cannot use are skipped (as browsers do).
pub fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "reading the system's TLS trust roots");
        }
        found.certs
    })
}

/// The root store of the policy: the system roots plus `ca_file`'s.
pub fn root_store(ca_file: Option<&CaFile>) -> RootCertStore {
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(ca) = ca_file {
        // Checked in CaFile::load: every one is accepted.
        store.add_parsable_certificates(ca.certificates().iter().cloned());
    }
    store
}

/// What a client says when the server's certificate is not trusted (the
/// error is `Permanent`: retrying cannot help, the trust roots must change).
pub const UNTRUSTED_CERTIFICATE: &str =
    "the server's TLS certificate is not trusted: set ca_file to the CA that signed it";

/// Whether `err` (or anything in its source chain) is rustls refusing the
/// server's certificate, so callers can tell a trust problem from a network one.
pub fn is_untrusted_certificate(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if matches!(e.downcast_ref::<rustls::Error>(), Some(rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        // io::Error::source() skips the error it wraps: look at it directly.
        let wrapped = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        if wrapped.is_some_and(|inner| is_untrusted_certificate(inner)) {
            return true;
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn write(text: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text).unwrap();
        f
    }

    #[test]
    fn a_missing_file_is_invalid_config_naming_the_field_and_path() {
        let e = CaFile::load("/nonexistent/ca.pem").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("ca_file") && e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let f = write(b"just some text, no PEM here\n");
        let e = CaFile::load(f.path().to_str().unwrap()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("no PEM CERTIFICATE"), "{e}");
    }

    #[test]
    fn a_certificate_block_that_is_not_x509_is_refused() {
        let f = write(b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n");
        let e = CaFile::load(f.path().to_str().unwrap()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("not usable"), "{e}");
    }

    #[test]
    fn a_refused_certificate_is_found_through_io_errors() {
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = std::io::Error::new(std::io::ErrorKind::InvalidData, refused);
        assert!(is_untrusted_certificate(&wrapped));
        let other = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert!(!is_untrusted_certificate(&other));
        assert!(!is_untrusted_certificate(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
    }

    #[test]
    fn blank_config_values_mean_no_ca_file() {
        assert!(CaFile::from_config(None).unwrap().is_none());
        assert!(CaFile::from_config(Some("  ")).unwrap().is_none());
    }
}
