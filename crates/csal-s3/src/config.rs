//! `S3Config`: the typed config of an `s3` instance, its config spec and
//! validation. Presets (see `presets.rs`) build one of these from their own
//! smaller config.

use std::time::Duration;

use csal_core::{ConfigField, ExposeSecret, Result, SecretString, StorageError};

/// Smallest part S3 accepts (except the last one).
pub const MIN_PART_SIZE_MB: u64 = 5;
/// Largest part S3 accepts.
pub const MAX_PART_SIZE_MB: u64 = 5 * 1024;
/// S3 allows at most this many parts per upload.
pub const MAX_PARTS: u64 = 10_000;

/// How upload integrity is checked by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumAlgorithm {
    /// `x-amz-checksum-crc32c` on every PUT and part (AWS, MinIO, recent Ceph).
    Crc32c,
    /// `Content-MD5` on every PUT and part: the most widely supported.
    Md5,
    /// No checksum header (servers that reject both). Not recommended.
    None,
}

/// `If-None-Match: *` on create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionalCreate {
    /// Send it; if the server answers NotImplemented, stop sending it for
    /// this instance (ids stay unique anyway).
    Auto,
    /// Always send it; a server that rejects it fails the write.
    Always,
    /// Never send it (unique ids only).
    Never,
}

/// Whether SigV4 signs the SHA-256 of upload bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadSigning {
    /// Unsigned (`UNSIGNED-PAYLOAD`) when the body carries a checksum the
    /// server verifies and the connection cannot be tampered with on the
    /// way (HTTPS, or a loopback address: the "potentially trustworthy"
    /// origins of the W3C Secure Contexts rule); signed otherwise.
    Auto,
    /// Always hash and sign the body (one more SHA-256 pass on each side).
    Always,
    /// Never sign the body (the checksum header, which is signed, still is).
    Never,
}

/// Config of an `s3` instance.
#[derive(Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// `https://host[:port]`; empty for AWS itself.
    pub endpoint: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<SecretString>,
    pub session_token: Option<SecretString>,
    #[serde(default)]
    pub force_path_style: bool,
    /// Key prefix inside the bucket (a folder); object ids are relative to it.
    pub prefix: Option<String>,
    pub storage_class: Option<String>,
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub server_side_encryption: Option<String>,
    pub sse_kms_key_id: Option<String>,
    #[serde(default = "default_part_size_mb")]
    pub part_size_mb: u64,
    #[serde(default = "default_upload_concurrency")]
    pub upload_concurrency: usize,
    #[serde(default = "default_checksum")]
    pub checksum_algorithm: ChecksumAlgorithm,
    #[serde(default = "default_conditional")]
    pub conditional_create: ConditionalCreate,
    #[serde(default = "default_payload_signing")]
    pub payload_signing: PayloadSigning,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Per HTTP request attempt (a part upload, a GET until headers, ...).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Longest wait for data on an open connection.
    #[serde(default = "default_read_timeout")]
    pub read_timeout_secs: u64,
    /// Health check answers slower than this report `degraded`.
    #[serde(default = "default_degraded_ms")]
    pub degraded_latency_ms: u64,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_part_size_mb() -> u64 {
    8
}
fn default_upload_concurrency() -> usize {
    4
}
fn default_checksum() -> ChecksumAlgorithm {
    ChecksumAlgorithm::Crc32c
}
fn default_conditional() -> ConditionalCreate {
    ConditionalCreate::Auto
}
fn default_payload_signing() -> PayloadSigning {
    PayloadSigning::Auto
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_request_timeout() -> u64 {
    120
}
fn default_read_timeout() -> u64 {
    60
}
fn default_degraded_ms() -> u64 {
    2000
}

impl std::fmt::Debug for S3Config {
    /// Secrets are never printed; the access key id is shown (it is not a secret).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key.as_ref().map(|_| csal_core::secret::MASK))
            .field("session_token", &self.session_token.as_ref().map(|_| csal_core::secret::MASK))
            .field("force_path_style", &self.force_path_style)
            .field("prefix", &self.prefix)
            .field("part_size_mb", &self.part_size_mb)
            .field("upload_concurrency", &self.upload_concurrency)
            .field("checksum_algorithm", &self.checksum_algorithm)
            .field("payload_signing", &self.payload_signing)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// A config with defaults for everything but bucket, endpoint and keys.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            region: default_region(),
            endpoint: None,
            access_key: None,
            secret_key: None,
            session_token: None,
            force_path_style: false,
            prefix: None,
            storage_class: None,
            server_side_encryption: None,
            sse_kms_key_id: None,
            part_size_mb: default_part_size_mb(),
            upload_concurrency: default_upload_concurrency(),
            checksum_algorithm: default_checksum(),
            conditional_create: default_conditional(),
            payload_signing: default_payload_signing(),
            connect_timeout_secs: default_connect_timeout(),
            request_timeout_secs: default_request_timeout(),
            read_timeout_secs: default_read_timeout(),
            degraded_latency_ms: default_degraded_ms(),
        }
    }

    /// Whether upload bodies are hashed into the SigV4 signature (see [`PayloadSigning`]).
    /// Integrity does not depend on it: every PUT and part carries its checksum.
    pub fn signs_payload(&self) -> bool {
        match self.payload_signing {
            PayloadSigning::Always => true,
            PayloadSigning::Never => false,
            PayloadSigning::Auto => {
                self.checksum_algorithm == ChecksumAlgorithm::None
                    || !self.endpoint.as_deref().is_none_or(endpoint_is_trustworthy)
            }
        }
    }

    /// Check values serde cannot; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, why: &str| Err(StorageError::invalid_config(format!("field '{field}': {why}")));
        let b = &self.bucket;
        if b.len() < 3
            || b.len() > 63
            || !b.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' || c == '_')
        {
            return bad("bucket", "must be 3-63 lowercase letters, digits, '-', '.' or '_'");
        }
        if self.region.trim().is_empty() || self.region.chars().any(char::is_whitespace) {
            return bad("region", "must be a region name such as us-east-1");
        }
        if let Some(ep) = &self.endpoint {
            if !(ep.starts_with("http://") || ep.starts_with("https://")) || ep.contains(char::is_whitespace) {
                return bad("endpoint", "must be an http:// or https:// URL");
            }
        }
        match (&self.access_key, &self.secret_key) {
            (Some(a), Some(s)) if !a.is_empty() && !s.expose_secret().is_empty() => {}
            (None, None) => {}
            (Some(_), None) | (Some(_), Some(_)) => return bad("secret_key", "is required with access_key"),
            (None, Some(_)) => return bad("access_key", "is required with secret_key"),
        }
        if self.session_token.is_some() && self.access_key.is_none() {
            return bad("session_token", "needs access_key and secret_key");
        }
        if let Some(p) = &self.prefix {
            let trimmed = p.trim_matches('/');
            if !trimmed.is_empty() && csal_core::check_object_id(trimmed).is_err() {
                return bad("prefix", "must be a clean relative path (no '..', '//', backslashes)");
            }
        }
        if !(MIN_PART_SIZE_MB..=MAX_PART_SIZE_MB).contains(&self.part_size_mb) {
            return bad("part_size_mb", "must be between 5 and 5120");
        }
        if !(1..=64).contains(&self.upload_concurrency) {
            return bad("upload_concurrency", "must be between 1 and 64");
        }
        if let Some(sse) = &self.server_side_encryption {
            if !["AES256", "aws:kms", "aws:kms:dsse"].contains(&sse.as_str()) {
                return bad("server_side_encryption", "must be AES256, aws:kms or aws:kms:dsse");
            }
        }
        if self.sse_kms_key_id.is_some() && !self.server_side_encryption.as_deref().is_some_and(|s| s.contains("kms")) {
            return bad("sse_kms_key_id", "needs server_side_encryption aws:kms or aws:kms:dsse");
        }
        for (field, v) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("read_timeout_secs", self.read_timeout_secs),
        ] {
            if !(1..=3600).contains(&v) {
                return bad(field, "must be between 1 and 3600 seconds");
            }
        }
        Ok(())
    }

    pub fn part_size(&self) -> usize {
        (self.part_size_mb * 1024 * 1024) as usize
    }

    /// The key prefix with exactly one trailing slash, or "".
    pub fn key_prefix(&self) -> String {
        match self.prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(p) if !p.is_empty() => format!("{p}/"),
            _ => String::new(),
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_secs)
    }
}

/// HTTPS, or plain HTTP to a loopback address (nothing on the way to tamper with).
fn endpoint_is_trustworthy(endpoint: &str) -> bool {
    let Ok(url) = url::Url::parse(endpoint) else { return false };
    match (url.scheme(), url.host()) {
        ("https", _) => true,
        ("http", Some(url::Host::Domain(d))) => d.eq_ignore_ascii_case("localhost"),
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        _ => false,
    }
}

const DOC: &str = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/";

/// The `s3` config spec.
pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::text("bucket", "Bucket").required().help("Name of an existing bucket.").doc(DOC),
    ConfigField::text("region", "Region").default("\"us-east-1\"").help("Region the bucket lives in (signs requests)."),
    ConfigField::url("endpoint", "Endpoint URL")
        .help("Leave empty for AWS. For other S3 servers: https://host[:port] (MinIO, Ceph, a local emulator)."),
    ConfigField::text("access_key", "Access key ID").help("Static credentials. Empty: anonymous requests."),
    ConfigField::secret("secret_key", "Secret access key"),
    ConfigField::secret("session_token", "Session token").help("Only for temporary (STS) credentials."),
    ConfigField::bool("force_path_style", "Path-style addressing")
        .default("false")
        .help("Use https://host/bucket/key instead of https://bucket.host/key (most self-hosted servers need it)."),
    ConfigField::text("prefix", "Key prefix").help("Folder inside the bucket that holds this instance's objects."),
    ConfigField::select(
        "storage_class",
        "Storage class",
        &["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "REDUCED_REDUNDANCY"],
    )
    .help("Storage class of new objects. Empty: the bucket default."),
    ConfigField::select("server_side_encryption", "Server-side encryption", &["AES256", "aws:kms", "aws:kms:dsse"]),
    ConfigField::text("sse_kms_key_id", "KMS key id").help("With aws:kms encryption; empty: the AWS managed key."),
    ConfigField::number("part_size_mb", "Part size (MiB)")
        .default("8")
        .help("Bodies up to this size are one PUT; larger ones are multipart uploads of parts this size (5-5120)."),
    ConfigField::number("upload_concurrency", "Parallel part uploads")
        .default("4")
        .help("Parts in flight per upload. Memory per upload is about part size x (this + 1)."),
    ConfigField::select("checksum_algorithm", "Upload checksum", &["crc32c", "md5", "none"])
        .default("\"crc32c\"")
        .help("Checksum sent with every PUT and part so the server verifies the bytes (md5 = Content-MD5)."),
    ConfigField::select("conditional_create", "Conditional create", &["auto", "always", "never"])
        .default("\"auto\"")
        .help("Send If-None-Match: * so an existing key is never overwritten. auto: stop sending it if the server does not implement it."),
    ConfigField::select("payload_signing", "Payload signing", &["auto", "always", "never"])
        .default("\"auto\"")
        .help("auto: bodies with a checksum are sent UNSIGNED-PAYLOAD over HTTPS or to a loopback address (saves a SHA-256 pass on both sides), signed otherwise."),
    ConfigField::number("connect_timeout_secs", "Connect timeout (s)").default("10"),
    ConfigField::number("request_timeout_secs", "Request timeout (s)")
        .default("120")
        .help("Per HTTP request attempt (one part upload, a GET until its headers)."),
    ConfigField::number("read_timeout_secs", "Read timeout (s)").default("60"),
    ConfigField::number("degraded_latency_ms", "Degraded above (ms)")
        .default("2000")
        .help("A health check slower than this reports degraded."),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<S3Config> {
        let c: S3Config = csal_core::parse_config("s3", &v)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(serde_json::json!({"bucket": "cams"})).unwrap();
        assert_eq!(c.part_size(), 8 * 1024 * 1024);
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.key_prefix(), "");
    }

    #[test]
    fn bad_values_name_their_field() {
        for (cfg, field) in [
            (serde_json::json!({"bucket": "A"}), "bucket"),
            (serde_json::json!({"bucket": "cams", "part_size_mb": 1}), "part_size_mb"),
            (serde_json::json!({"bucket": "cams", "upload_concurrency": 0}), "upload_concurrency"),
            (serde_json::json!({"bucket": "cams", "access_key": "a"}), "secret_key"),
            (serde_json::json!({"bucket": "cams", "prefix": "../up"}), "prefix"),
            (serde_json::json!({"bucket": "cams", "checksum_algorithm": "sha1"}), "checksum_algorithm"),
        ] {
            let e = parse(cfg).unwrap_err();
            assert_eq!(e.kind(), csal_core::ErrorKind::InvalidConfig);
            assert!(e.message().contains(field), "{e}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let c =
            parse(serde_json::json!({"bucket": "cams", "access_key": "AKIA", "secret_key": "sup3rs3cret"})).unwrap();
        assert!(!format!("{c:?}").contains("sup3rs3cret"));
    }

    #[test]
    fn payload_is_signed_unless_a_checksum_travels_over_a_trustworthy_connection() {
        let signs = |extra: serde_json::Value| {
            let mut cfg = serde_json::json!({"bucket": "cams"});
            cfg.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse(cfg).unwrap().signs_payload()
        };
        assert!(!signs(serde_json::json!({})), "AWS itself (HTTPS)");
        assert!(!signs(serde_json::json!({"endpoint": "https://minio.example:9000"})));
        assert!(!signs(serde_json::json!({"endpoint": "http://127.0.0.1:9000"})));
        assert!(!signs(serde_json::json!({"endpoint": "http://localhost:9000"})));
        assert!(!signs(serde_json::json!({"endpoint": "http://[::1]:9000"})));
        assert!(signs(serde_json::json!({"endpoint": "http://minio.lan:9000"})), "plain HTTP over a network");
        assert!(signs(serde_json::json!({"endpoint": "http://10.0.0.5:9000"})));
        assert!(signs(serde_json::json!({"checksum_algorithm": "none"})), "no checksum: the signature is the check");
        assert!(signs(serde_json::json!({"payload_signing": "always"})));
        assert!(!signs(serde_json::json!({"endpoint": "http://minio.lan", "payload_signing": "never"})));
    }
}
