//! `S3Config`: the typed config of an `s3` instance, its config spec and
//! validation. Presets (see `presets.rs`) build one of these from their own
//! smaller config.

use std::time::Duration;

use csal_core::{ExposeSecret, Result, SecretString, StorageError};

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

impl ChecksumAlgorithm {
    /// The value as the config spec writes it (JSON text).
    pub const fn json(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32c => "\"crc32c\"",
            ChecksumAlgorithm::Md5 => "\"md5\"",
            ChecksumAlgorithm::None => "\"none\"",
        }
    }
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

/// Where an instance's AWS credentials come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    /// `access_key` / `secret_key` (/ `session_token`) of this config;
    /// none of them: anonymous requests (public buckets).
    Static,
    /// The AWS SDK's default chain, as the AWS CLI resolves it: environment
    /// variables, the profile files (static keys, SSO, `credential_process`,
    /// assumed roles), web identity tokens, ECS container credentials and
    /// EC2 instance metadata. Needs the crate's `aws-config` feature.
    DefaultChain,
}

/// Config of an `s3` instance.
#[csal_core::config(
    provider = "s3",
    name = "Amazon S3",
    category = object_storage,
    description = "Amazon S3 or any S3-compatible server, with multipart uploads, conditional create and presigned URLs.",
    timeouts(connect = 10, request = 120, read = 60),
    tls
)]
#[derive(Clone)]
pub struct S3Config {
    /// Name of an existing bucket.
    #[field(label = "Bucket", doc_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/")]
    pub bucket: String,
    /// Region the bucket lives in (signs requests).
    #[field(label = "Region", default = "us-east-1")]
    pub region: String,
    /// Leave empty for AWS. For other S3 servers: https://host[:port] (MinIO, Ceph, a local emulator).
    #[field(label = "Endpoint URL", url, credential_target)]
    pub endpoint: Option<String>,
    /// static: the keys below (none: anonymous requests). default_chain: what the AWS CLI would use (environment, profile files incl. SSO, web identity, ECS container, EC2 instance metadata); needs csal-s3's `aws-config` feature.
    #[field(
        label = "Credentials",
        select = ["static", "default_chain"],
        default = "static",
        doc_url = "https://docs.aws.amazon.com/sdkref/latest/guide/standardized-credentials.html"
    )]
    pub credentials: CredentialSource,
    /// With default_chain: the profile to read. Empty: AWS_PROFILE, else "default".
    #[field(label = "AWS profile")]
    pub profile: Option<String>,
    /// With default_chain: the shared credentials file. Empty: AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials.
    #[field(label = "AWS credentials file", path)]
    pub credentials_file: Option<String>,
    /// With default_chain: the shared config file (profiles, SSO, roles, ec2_metadata_service_endpoint). Empty: AWS_CONFIG_FILE, else ~/.aws/config.
    #[field(label = "AWS config file", path)]
    pub config_file: Option<String>,
    /// Static credentials. Empty: anonymous requests.
    #[field(label = "Access key ID")]
    pub access_key: Option<String>,
    /// Secret of `access_key`; both empty for anonymous requests.
    #[field(label = "Secret access key")]
    pub secret_key: Option<SecretString>,
    /// Only for temporary (STS) credentials.
    #[field(label = "Session token")]
    pub session_token: Option<SecretString>,
    /// Use https://host/bucket/key instead of https://bucket.host/key (most self-hosted servers need it).
    #[field(label = "Path-style addressing", default = false)]
    pub force_path_style: bool,
    /// Folder inside the bucket that holds this instance's objects.
    #[field(label = "Key prefix")]
    pub prefix: Option<String>,
    /// Storage class of new objects. Empty: the bucket default.
    #[field(
        label = "Storage class",
        select = ["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "REDUCED_REDUNDANCY"]
    )]
    pub storage_class: Option<String>,
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    #[field(label = "Server-side encryption", select = ["AES256", "aws:kms", "aws:kms:dsse"])]
    pub server_side_encryption: Option<String>,
    /// With aws:kms encryption; empty: the AWS managed key.
    #[field(label = "KMS key id")]
    pub sse_kms_key_id: Option<String>,
    /// Bodies up to this size are one PUT; larger ones are multipart uploads of parts this size (5-5120).
    #[field(label = "Part size (MiB)", default = 8)]
    pub part_size_mb: u64,
    /// Parts in flight per upload. Memory per upload is about part size x (this + 1).
    #[field(label = "Parallel part uploads", default = 4)]
    pub upload_concurrency: usize,
    /// Ranged GETs (4 MiB each) in flight per read longer than 4 MiB: one GET runs at one connection's speed. 1 = one GET per read. Memory per read is about 4 MiB x (this + 1).
    #[field(label = "Parallel part downloads", default = 4)]
    pub read_concurrency: usize,
    /// Checksum sent with every PUT and part so the server verifies the bytes (md5 = Content-MD5).
    #[field(label = "Upload checksum", select = ["crc32c", "md5", "none"], default = "crc32c")]
    pub checksum_algorithm: ChecksumAlgorithm,
    /// Send If-None-Match: * so an existing key is never overwritten. auto: stop sending it if the server does not implement it.
    #[field(label = "Conditional create", select = ["auto", "always", "never"], default = "auto")]
    pub conditional_create: ConditionalCreate,
    /// auto: bodies with a checksum are sent UNSIGNED-PAYLOAD over HTTPS or to a loopback address (saves a SHA-256 pass on both sides), signed otherwise.
    #[field(label = "Payload signing", select = ["auto", "always", "never"], default = "auto")]
    pub payload_signing: PayloadSigning,
    /// A health check slower than this reports degraded.
    #[field(label = "Degraded above (ms)", default = 2000)]
    pub degraded_latency_ms: u64,
    /// The bucket was created with S3 Object Lock: camera legal holds become S3 legal holds, and a delete removes the object's version (one under a hold or retention is refused).
    #[field(
        label = "Object Lock bucket",
        default = false,
        doc_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html"
    )]
    pub object_lock: bool,
    /// Every new object is written under an S3 legal hold (no one can delete it until the hold is lifted). Needs an Object Lock bucket.
    #[field(label = "Legal hold on every write", default = false)]
    pub object_lock_legal_hold: bool,
    /// Retention of every new object: GOVERNANCE (users with the bypass permission can shorten it) or COMPLIANCE (no one can, not even the root account). Empty: none. Needs an Object Lock bucket and object_lock_days.
    #[field(label = "Object Lock retention mode", select = ["GOVERNANCE", "COMPLIANCE"])]
    pub object_lock_mode: Option<String>,
    /// Days every new object is retained in the mode above.
    #[field(label = "Object Lock retention (days)")]
    pub object_lock_days: Option<u64>,
    /// Multipart uploads unfinished for longer than this were left by a writer that died: health reports them, `csal fsck` and the scheduled reconciliation abort them. 0: every unfinished upload (also live ones; for tests).
    #[field(label = "Stale upload age (hours)", default = 24)]
    pub stale_upload_hours: u64,
}

impl S3Config {
    /// A config with the declared defaults for everything but the bucket.
    pub fn new(bucket: impl Into<String>) -> Self {
        let bucket: String = bucket.into();
        serde_json::from_value(serde_json::json!({ "bucket": bucket })).expect("every other field has a default")
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
        if let Some(ep) = &self.endpoint
            && (!(ep.starts_with("http://") || ep.starts_with("https://")) || ep.contains(char::is_whitespace))
        {
            return bad("endpoint", "must be an http:// or https:// URL");
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
        self.validate_credential_source()?;
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
        if !(1..=64).contains(&self.read_concurrency) {
            return bad("read_concurrency", "must be between 1 and 64");
        }
        if let Some(sse) = &self.server_side_encryption
            && !["AES256", "aws:kms", "aws:kms:dsse"].contains(&sse.as_str())
        {
            return bad("server_side_encryption", "must be AES256, aws:kms or aws:kms:dsse");
        }
        if self.sse_kms_key_id.is_some() && !self.server_side_encryption.as_deref().is_some_and(|s| s.contains("kms")) {
            return bad("sse_kms_key_id", "needs server_side_encryption aws:kms or aws:kms:dsse");
        }
        self.validate_object_lock()?;
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

    /// Keys only with `static`; the chain's settings only with
    /// `default_chain`, which needs the `aws-config` feature.
    fn validate_credential_source(&self) -> Result<()> {
        let bad = |field: &str, why: &str| Err(StorageError::invalid_config(format!("field '{field}': {why}")));
        let chain_settings = [
            ("profile", &self.profile),
            ("credentials_file", &self.credentials_file),
            ("config_file", &self.config_file),
        ];
        match self.credentials {
            CredentialSource::Static => {
                if let Some((field, _)) = chain_settings.iter().find(|(_, v)| v.is_some()) {
                    return bad(field, "is only used with credentials = default_chain");
                }
            }
            CredentialSource::DefaultChain => {
                if self.access_key.is_some() || self.secret_key.is_some() || self.session_token.is_some() {
                    return bad(
                        "access_key",
                        "must be empty with credentials = default_chain (the chain finds the keys)",
                    );
                }
                if let Some((field, _)) =
                    chain_settings.iter().find(|(_, v)| v.as_deref().is_some_and(|v| v.trim().is_empty()))
                {
                    return bad(field, "must not be blank (leave it out for the AWS default)");
                }
                if !cfg!(feature = "aws-config") {
                    return Err(chain_unavailable());
                }
            }
        }
        Ok(())
    }

    /// Object Lock settings make sense together: both retention fields or
    /// neither, and lock headers only on an Object Lock bucket with an
    /// upload checksum (S3 refuses locked uploads without one).
    fn validate_object_lock(&self) -> Result<()> {
        let bad = |field: &str, why: &str| Err(StorageError::invalid_config(format!("field '{field}': {why}")));
        if let Some(mode) = &self.object_lock_mode
            && !["GOVERNANCE", "COMPLIANCE"].contains(&mode.as_str())
        {
            return bad("object_lock_mode", "must be GOVERNANCE or COMPLIANCE");
        }
        match (&self.object_lock_mode, self.object_lock_days) {
            (Some(_), None) => return bad("object_lock_days", "is required with object_lock_mode"),
            (None, Some(_)) => return bad("object_lock_mode", "is required with object_lock_days"),
            (_, Some(days)) if !(1..=36_500).contains(&days) => {
                return bad("object_lock_days", "must be between 1 and 36500");
            }
            _ => {}
        }
        let locks_writes = self.object_lock_legal_hold || self.object_lock_mode.is_some();
        if locks_writes && !self.object_lock {
            return bad("object_lock", "must be on (an Object Lock bucket) to lock new objects");
        }
        if locks_writes && self.checksum_algorithm == ChecksumAlgorithm::None {
            return bad("checksum_algorithm", "S3 needs an upload checksum (crc32c or md5) for locked objects");
        }
        Ok(())
    }

    /// How long a multipart upload may stay unfinished before it is stale.
    pub fn stale_upload_age(&self) -> Duration {
        Duration::from_secs(self.stale_upload_hours.saturating_mul(3600))
    }

    /// `part_size_mb` in bytes (also the largest single PUT).
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

    /// `connect_timeout_secs` as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
    /// `request_timeout_secs` as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
    /// `read_timeout_secs` as a duration.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_secs)
    }
}

/// `credentials = "default_chain"` in a build without the `aws-config` feature.
pub(crate) fn chain_unavailable() -> StorageError {
    StorageError::invalid_config(
        "field 'credentials': default_chain needs csal-s3 built with its `aws-config` feature (this build has it off)",
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<S3Config>();
        assert_eq!(S3Config::new("cams").part_size_mb, 8);
    }

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
            (serde_json::json!({"bucket": "cams", "read_concurrency": 65}), "read_concurrency"),
            (serde_json::json!({"bucket": "cams", "access_key": "a"}), "secret_key"),
            (serde_json::json!({"bucket": "cams", "prefix": "../up"}), "prefix"),
            (serde_json::json!({"bucket": "cams", "checksum_algorithm": "sha1"}), "checksum_algorithm"),
            (serde_json::json!({"bucket": "cams", "object_lock_legal_hold": true}), "object_lock"),
            (serde_json::json!({"bucket": "cams", "credentials": "env"}), "credentials"),
            (serde_json::json!({"bucket": "cams", "profile": "archive"}), "profile"),
            (serde_json::json!({"bucket": "cams", "config_file": "/etc/aws/config"}), "config_file"),
            (
                serde_json::json!({"bucket": "cams", "credentials": "default_chain", "access_key": "a", "secret_key": "s"}),
                "access_key",
            ),
            (serde_json::json!({"bucket": "cams", "credentials": "default_chain", "profile": " "}), "profile"),
            (
                serde_json::json!({"bucket": "cams", "object_lock": true, "object_lock_mode": "GOVERNANCE"}),
                "object_lock_days",
            ),
            (serde_json::json!({"bucket": "cams", "object_lock": true, "object_lock_days": 3}), "object_lock_mode"),
            (
                serde_json::json!({"bucket": "cams", "object_lock": true, "object_lock_mode": "LOOSE", "object_lock_days": 3}),
                "object_lock_mode",
            ),
            (
                serde_json::json!({"bucket": "cams", "object_lock": true, "object_lock_legal_hold": true, "checksum_algorithm": "none"}),
                "checksum_algorithm",
            ),
        ] {
            let e = parse(cfg).unwrap_err();
            assert_eq!(e.kind(), csal_core::ErrorKind::InvalidConfig);
            assert!(e.message().contains(field), "{e}");
        }
    }

    #[test]
    fn default_chain_is_accepted_exactly_when_the_feature_is_built() {
        let chain = parse(serde_json::json!({"bucket": "cams", "credentials": "default_chain", "profile": "archive"}));
        if cfg!(feature = "aws-config") {
            assert_eq!(chain.unwrap().credentials, CredentialSource::DefaultChain);
        } else {
            let e = chain.unwrap_err();
            assert_eq!(e.kind(), csal_core::ErrorKind::InvalidConfig);
            assert!(e.message().contains("`aws-config` feature"), "{e}");
        }
        assert_eq!(parse(serde_json::json!({"bucket": "cams"})).unwrap().credentials, CredentialSource::Static);
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
