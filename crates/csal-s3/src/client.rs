//! The SDK client, built by hand from [`S3Config`] (region, endpoint and
//! static credentials come from the config, so aws-config is not needed;
//! only `credentials = "default_chain"` uses it, behind the `aws-config`
//! feature, see `chain.rs`), and the single-request calls: GET, HEAD,
//! DELETE, presign.
//!
//! Timeouts on every call: connect, read, and a per-attempt deadline.
//! SDK-level retries are off: retries belong to csal-core's retry layer
//! (and, for multipart parts, to `write.rs`, which holds the part in memory).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::presigning::PresigningConfig;
use csal_core::{ByteRange, ByteStream, ExposeSecret, ObjectMeta, Result, StorageError};

use crate::config::{CredentialSource, S3Config};
use crate::error::{body_error, map_sdk_error};
use crate::write::CRC32C_METADATA;

/// The SDK client plus what every call needs to know.
pub(crate) struct S3Client {
    pub(crate) sdk: Client,
    pub(crate) bucket: String,
    pub(crate) key_prefix: String,
}

impl S3Client {
    pub(crate) fn new(config: &S3Config) -> Result<Self> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(config.connect_timeout())
            .read_timeout(config.read_timeout())
            .operation_attempt_timeout(config.request_timeout())
            .build();
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .force_path_style(config.force_path_style)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::disabled())
            // We compute checksums ourselves on in-memory parts (write.rs):
            // plain headers, no aws-chunked trailers, which more servers accept.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenSupported)
            // Bodies come from memory; stalls are caught by the timeouts above
            // and by csal-core's idle watchdog.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.trim_end_matches('/'));
        }
        if config.credentials == CredentialSource::DefaultChain {
            builder = with_default_chain(builder, config)?;
        } else if let (Some(access), Some(secret)) = (&config.access_key, &config.secret_key) {
            let token = config.session_token.as_ref().map(|t| t.expose_secret().to_owned());
            builder = builder.credentials_provider(Credentials::new(
                access.clone(),
                secret.expose_secret().to_owned(),
                token,
                None,
                "csal-config",
            ));
        } else {
            // No keys configured: unsigned requests (public buckets).
            builder = builder.allow_no_auth();
        }
        Ok(S3Client {
            sdk: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            key_prefix: config.key_prefix(),
        })
    }

    /// The bucket key of an object id.
    pub(crate) fn key(&self, object_id: &str) -> String {
        format!("{}{object_id}", self.key_prefix)
    }

    /// The object id of a bucket key (None: outside our prefix).
    pub(crate) fn object_id<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.key_prefix.as_str()).filter(|id| !id.is_empty())
    }

    pub(crate) async fn head_bucket(&self) -> Result<()> {
        self.sdk
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &format!("HEAD bucket '{}'", self.bucket)))?;
        Ok(())
    }

    pub(crate) async fn get(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let what = format!("read '{object_id}'");
        let out = self
            .sdk
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(object_id))
            .set_range(range.map(|r| r.to_http_header()))
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &what))?;
        let len = out.content_length().and_then(|l| u64::try_from(l).ok());
        let stored = range.is_none().then(|| kept_crc32c(out.metadata())).flatten();
        let mut body = out.body;
        let stream = futures::stream::poll_fn(move |cx| std::pin::Pin::new(&mut body).poll_next(cx));
        let what_body = what.clone();
        let stream = futures::StreamExt::map(stream, move |item| item.map_err(|e| body_error(e, &what_body)));
        let body = ByteStream::new(stream, len).with_stored_checksum(stored);
        Ok(match len {
            Some(len) => body.expect_len(len),
            // No Content-Length (chunked answer): nothing to check against;
            // S3 servers send it on every GET we have seen.
            None => body,
        })
    }

    pub(crate) async fn head(&self, object_id: &str) -> Result<ObjectMeta> {
        let out = self
            .sdk
            .head_object()
            .bucket(&self.bucket)
            .key(self.key(object_id))
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &format!("stat '{object_id}'")))?;
        let size = out.content_length().and_then(|l| u64::try_from(l).ok()).unwrap_or(0);
        let mut meta = ObjectMeta::new(object_id, size);
        meta.modified = out.last_modified().and_then(to_system_time);
        meta.content_type = out.content_type().map(str::to_owned);
        meta.etag = out.e_tag().map(|e| e.trim_matches('"').to_owned());
        meta.checksum = kept_crc32c(out.metadata());
        meta.metadata = out
            .metadata()
            .map(|m| m.iter().filter(|(k, _)| *k != CRC32C_METADATA).map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_else(BTreeMap::new);
        if let Some(crc) = out.checksum_crc32_c().and_then(crc32c_from_base64) {
            // Only a full-object checksum (not a composite "...-N").
            meta.checksum = Some(csal_core::Checksum::crc32c(crc));
        }
        Ok(meta)
    }

    pub(crate) async fn delete(&self, object_id: &str) -> Result<()> {
        let result = self.sdk.delete_object().bucket(&self.bucket).key(self.key(object_id)).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = map_sdk_error(e, &format!("delete '{object_id}'"));
                // Deleting what is not there is success.
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }

    pub(crate) async fn presign_get(&self, object_id: &str, expires_in: Duration) -> Result<String> {
        let presigning = PresigningConfig::expires_in(expires_in)
            .map_err(|e| StorageError::invalid_input("presign expiry is out of range").with_source(e))?;
        let req = self
            .sdk
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(object_id))
            .presigned(presigning)
            .await
            .map_err(|e| map_sdk_error(e, &format!("presign '{object_id}'")))?;
        Ok(req.uri().to_owned())
    }
}

#[cfg(feature = "aws-config")]
fn with_default_chain(builder: aws_sdk_s3::config::Builder, config: &S3Config) -> Result<aws_sdk_s3::config::Builder> {
    Ok(builder.credentials_provider(crate::chain::DefaultChain::new(config)))
}

/// Refused by `S3Config::validate` already; kept so a config built around
/// it still cannot reach the SDK unsigned.
#[cfg(not(feature = "aws-config"))]
fn with_default_chain(_: aws_sdk_s3::config::Builder, _: &S3Config) -> Result<aws_sdk_s3::config::Builder> {
    Err(crate::config::chain_unavailable())
}

pub(crate) fn to_system_time(t: &aws_smithy_types::DateTime) -> Option<SystemTime> {
    SystemTime::try_from(*t).ok()
}

/// The CRC32C a single-PUT object keeps in its user metadata (see
/// [`CRC32C_METADATA`]); `None` for multipart objects and foreign ones.
fn kept_crc32c(metadata: Option<&std::collections::HashMap<String, String>>) -> Option<csal_core::Checksum> {
    let value = metadata?.get(CRC32C_METADATA)?;
    let checksum = csal_core::Checksum { algorithm: "crc32c".into(), value: value.to_ascii_lowercase() };
    checksum.crc32c_value().is_some().then_some(checksum)
}

fn crc32c_from_base64(value: &str) -> Option<u32> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(value).ok()?;
    let arr: [u8; 4] = bytes.try_into().ok()?;
    Some(u32::from_be_bytes(arr))
}
