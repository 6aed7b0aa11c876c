//! `gcs` instance config, its field spec, and validation.

use std::time::Duration;

use csal_core::{ExposeSecret, Result, SecretString, StorageError, Timeouts};

/// Resumable uploads send chunks that are multiples of this (a GCS rule).
pub const CHUNK_GRANULARITY: usize = 256 * 1024;
/// The default upload chunk (`chunk_size_kib`), for callers that match it.
pub const DEFAULT_CHUNK_SIZE: usize = 16 << 20;

/// Config of a `gcs` instance.
#[csal_core::config(
    provider = "gcs",
    name = "Google Cloud Storage",
    category = object_storage,
    description = "Google Cloud Storage buckets (JSON API): resumable uploads, signed URLs.",
    timeouts(connect = 10, request = 120, read = 60),
    tls
)]
#[derive(Clone)]
pub struct GcsConfig {
    /// Name of an existing bucket.
    #[field(label = "Bucket", doc_url = "https://cloud.google.com/storage/docs/buckets")]
    pub bucket: String,
    /// The JSON key file of a service account (or an authorized_user file). Needed for signed URLs.
    #[field(
        label = "Service-account key (JSON)",
        secret_multiline,
        doc_url = "https://cloud.google.com/iam/docs/keys-create-delete"
    )]
    pub credentials_json: Option<SecretString>,
    /// Path of the JSON key file instead of pasting it. Empty with no key: application default credentials.
    #[field(
        label = "Key file path",
        path,
        doc_url = "https://cloud.google.com/docs/authentication/application-default-credentials"
    )]
    pub credentials_path: Option<String>,
    /// Send no credentials (emulators, public buckets). Default: on when another endpoint is set and no key is given.
    #[field(label = "Anonymous")]
    pub anonymous: Option<bool>,
    /// JSON API root. Set it for an emulator such as fake-gcs-server.
    #[field(label = "Endpoint", url, credential_target, default = "https://storage.googleapis.com")]
    pub endpoint: String,
    /// Resumable upload chunk, a multiple of 256 KiB; memory per upload is
    /// about this much. 16 MiB is also Google's Go client's default: fewer,
    /// larger requests per GiB, and a retry resends at most one chunk.
    #[field(
        label = "Upload chunk size (KiB)",
        default = 16384,
        doc_url = "https://cloud.google.com/storage/docs/performing-resumable-uploads#chunked-upload"
    )]
    pub chunk_size_kib: usize,
    /// How often an interrupted upload chunk is resumed (status query, then resend), or a
    /// one-chunk one-shot body's single upload sent again.
    #[field(label = "Resume attempts", default = 5)]
    pub resume_attempts: u32,
}

/// How requests are authorised.
#[derive(Clone)]
pub(crate) enum CredentialSource {
    Anonymous,
    /// A key JSON given in the config (or read from `credentials_path`).
    Key(KeyJson),
    /// Application default credentials (`GOOGLE_APPLICATION_CREDENTIALS`,
    /// then the metadata server).
    ApplicationDefault,
}

/// A parsed credentials JSON; `raw` is the whole secret text.
#[derive(Clone)]
pub(crate) struct KeyJson {
    pub raw: SecretString,
    pub kind: KeyKind,
    /// `client_email` of a service-account key (for signed URLs).
    pub client_email: Option<String>,
    /// Which config field it came from (for error messages).
    pub field: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    ServiceAccount,
    AuthorizedUser,
}

/// The checked, defaulted settings a module runs with.
#[derive(Clone)]
pub(crate) struct Settings {
    pub bucket: String,
    pub endpoint: String,
    pub credentials: CredentialSource,
    /// A key that can sign URLs, even when requests go out anonymously.
    pub signing_key: Option<KeyJson>,
    pub chunk_size: usize,
    pub timeouts: Timeouts,
    /// The whole-request limit of non-streaming requests.
    pub request_timeout: Duration,
    pub resume_attempts: u32,
    pub ca_file: Option<csal_core::tls::CaFile>,
}

fn invalid(field: &str, why: &str) -> StorageError {
    StorageError::invalid_config(format!("field '{field}': {why}")).with_provider("gcs")
}

impl GcsConfig {
    pub(crate) fn settings(&self) -> Result<Settings> {
        let bucket = self.bucket.trim();
        let bucket_ok = (3..=222).contains(&bucket.len())
            && bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(invalid(
                "bucket",
                "must be 3-222 characters of lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
            ));
        }
        let endpoint = self.endpoint.trim_end_matches('/').to_owned();
        let google = match reqwest::Url::parse(&endpoint) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                u.host_str().is_some_and(|h| h.ends_with(".googleapis.com"))
            }
            _ => return Err(invalid("endpoint", "must be an http:// or https:// URL")),
        };
        let key = match (&self.credentials_json, &self.credentials_path) {
            (Some(_), Some(_)) => {
                return Err(invalid("credentials_path", "give either credentials_json or credentials_path, not both"));
            }
            (Some(json), None) if !json.expose_secret().trim().is_empty() => {
                Some(parse_key(json.clone(), "credentials_json")?)
            }
            (_, Some(path)) if !path.trim().is_empty() => {
                let text = std::fs::read_to_string(path.trim())
                    .map_err(|e| invalid("credentials_path", &format!("cannot read the key file: {}", e.kind())))?;
                Some(parse_key(SecretString::from(text), "credentials_path")?)
            }
            _ => None,
        };
        let anonymous = self.anonymous.unwrap_or(!google && key.is_none());
        let signing_key = key.clone().filter(|k| k.kind == KeyKind::ServiceAccount);
        let credentials = match (anonymous, key) {
            (true, _) => CredentialSource::Anonymous,
            (false, Some(k)) => CredentialSource::Key(k),
            (false, None) => CredentialSource::ApplicationDefault,
        };
        let chunk_kib = self.chunk_size_kib;
        if chunk_kib == 0 || !(chunk_kib * 1024).is_multiple_of(CHUNK_GRANULARITY) || chunk_kib > 1024 * 1024 {
            return Err(invalid("chunk_size_kib", "must be a positive multiple of 256 (KiB), at most 1048576"));
        }
        let timeouts = self.timeouts()?;
        Ok(Settings {
            bucket: bucket.to_owned(),
            endpoint,
            credentials,
            signing_key,
            chunk_size: chunk_kib * 1024,
            request_timeout: timeouts.request.expect("gcs has request_timeout_secs"),
            timeouts,
            resume_attempts: self.resume_attempts,
            ca_file: self.trusted_ca()?,
        })
    }
}

/// Check a credentials JSON's shape (never echoing its content).
fn parse_key(raw: SecretString, field: &'static str) -> Result<KeyJson> {
    let value: serde_json::Value = serde_json::from_str(raw.expose_secret())
        .map_err(|_| invalid(field, "is not valid JSON (expected a Google credentials JSON file)"))?;
    let text = |k: &str| value.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_owned);
    match value.get("type").and_then(|v| v.as_str()) {
        Some("service_account") => {
            let client_email = text("client_email").ok_or_else(|| invalid(field, "has no client_email"))?;
            text("private_key").ok_or_else(|| invalid(field, "has no private_key"))?;
            if text("token_uri").is_none() {
                return Err(invalid(field, "has no token_uri"));
            }
            Ok(KeyJson { raw, kind: KeyKind::ServiceAccount, client_email: Some(client_email), field })
        }
        Some("authorized_user") => {
            for k in ["client_id", "client_secret", "refresh_token"] {
                if text(k).is_none() {
                    return Err(invalid(field, &format!("has no {k}")));
                }
            }
            Ok(KeyJson { raw, kind: KeyKind::AuthorizedUser, client_email: None, field })
        }
        _ => Err(invalid(field, "must be a key of type service_account or authorized_user")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: serde_json::Value) -> Result<Settings> {
        csal_core::parse_config::<GcsConfig>("gcs", &v)?.settings()
    }

    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<GcsConfig>();
    }

    #[test]
    fn chunk_size_must_be_a_multiple_of_256_kib() {
        let e = settings(json!({"bucket": "abc", "chunk_size_kib": 300})).err().unwrap();
        assert!(e.message().contains("chunk_size_kib"), "{e}");
        assert_eq!(settings(json!({"bucket": "abc", "chunk_size_kib": 512})).unwrap().chunk_size, 512 * 1024);
        assert_eq!(settings(json!({"bucket": "abc"})).unwrap().chunk_size, DEFAULT_CHUNK_SIZE);
    }

    #[test]
    fn endpoint_without_key_is_anonymous() {
        let s = settings(json!({"bucket": "abc", "endpoint": "http://127.0.0.1:4443"})).unwrap();
        assert!(matches!(s.credentials, CredentialSource::Anonymous));
        let s = settings(json!({"bucket": "abc"})).unwrap();
        assert!(matches!(s.credentials, CredentialSource::ApplicationDefault));
    }

    #[test]
    fn malformed_key_names_the_field_without_echoing_it() {
        let e = settings(json!({"bucket": "abc", "credentials_json": "not json TOPSECRET"})).err().unwrap();
        assert!(e.message().contains("credentials_json"), "{e}");
        assert!(!format!("{e:?}").contains("TOPSECRET"));
        let e = settings(json!({"bucket": "abc", "credentials_json": "{\"type\":\"service_account\",\"private_key\":\"TOPSECRET\"}"}))
            .err()
            .unwrap();
        assert!(e.message().contains("client_email"), "{e}");
        assert!(!format!("{e:?}").contains("TOPSECRET"));
    }

    #[test]
    fn bad_bucket_names_are_refused() {
        for b in ["", "A", "ab", "-abc", "a/b", "Bucket"] {
            assert!(settings(json!({"bucket": b})).is_err(), "{b}");
        }
    }
}
