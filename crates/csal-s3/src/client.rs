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
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::presigning::PresigningConfig;
use csal_core::{ByteRange, ByteStream, ExposeSecret, ObjectMeta, Result, StorageError};

use crate::config::{CredentialSource, S3Config};
use crate::error::{body_error, map_sdk_error};
use crate::write::CRC32C_METADATA;

/// The SDK's own HTTPS client (hyper, rustls on aws-lc-rs, the system's
/// trust store, as `default-https-client` builds it) with `ca_file`'s
/// certificates trusted too: the policy of [`csal_core::tls`].
fn https_client(ca: &csal_core::tls::CaFile) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let trust = TrustStore::default().with_native_roots(true).with_pem_certificate(ca.pem());
    let context = TlsContext::builder().with_trust_store(trust).build().map_err(|e| {
        StorageError::invalid_config("field 'ca_file': cannot set up TLS with it").with_provider("s3").with_source(e)
    })?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

/// The SDK client plus what every call needs to know.
pub(crate) struct S3Client {
    pub(crate) sdk: Client,
    pub(crate) bucket: String,
    pub(crate) key_prefix: String,
    /// Ranged GETs in flight per long read (see [`S3Client::get`]).
    read_concurrency: usize,
}

/// Bytes per ranged GET of a long read. Each range is held whole until it is
/// handed on, so this bounds a read's memory: 4 MiB x (read_concurrency + 1)
/// of data, a 256 MiB read peaking at 55 MiB RSS at the default concurrency.
/// 8 MiB ranges read s3s-fs 19 % faster (255 vs 214 MiB/s, OpenDAL's reader
/// on the same knobs alike) but peaked at 92 MiB, over the 64 MiB target;
/// copying each range into one exact buffer did not lower either peak, so
/// the excess is not the HTTP client's buffers (2026-12-05).
pub const READ_RANGE: u64 = 4 * 1024 * 1024;

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
        if let Some(ca) = config.trusted_ca()? {
            builder = builder.http_client(https_client(&ca)?);
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
            read_concurrency: config.read_concurrency,
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

    /// Read an object or a range of it. Up to [`READ_RANGE`]: one GET. Longer:
    /// the first GET asks for the first range only and its `Content-Range`
    /// gives the object's length; the rest comes as ranged GETs,
    /// `read_concurrency` at once, all pinned to the first answer's ETag
    /// (`If-Match`), so a key replaced meanwhile fails the read instead of
    /// mixing two objects.
    pub(crate) async fn get(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let start = match range {
            None => 0,
            Some(ByteRange::From { start } | ByteRange::Inclusive { start, .. }) => start,
            // Where it starts is known only from the answer: one GET.
            Some(ByteRange::Suffix { .. }) => return self.get_once(object_id, range).await,
        };
        let asked_end = match range {
            Some(ByteRange::Inclusive { end, .. }) => Some(end.saturating_add(1)),
            _ => None,
        };
        let part = READ_RANGE;
        if self.read_concurrency <= 1 || asked_end.is_some_and(|end| end - start <= part) {
            return self.get_once(object_id, range).await;
        }
        let first_range = ByteRange::inclusive(start, start + part - 1);
        let first = match self.get_object(object_id, Some(first_range)).await {
            // An empty object has no first byte to ask for.
            Err(e) if range.is_none() && e.kind() == csal_core::ErrorKind::RangeNotSatisfiable => {
                return self.get_once(object_id, None).await;
            }
            other => other?,
        };
        let Some(total) = first.content_range().and_then(content_range_total) else {
            // The server ignored the Range header: the answer is the whole object.
            if start > 0 {
                return Err(StorageError::permanent(format!(
                    "read '{object_id}': the server answered a ranged read with the whole object"
                )));
            }
            return Ok(self.body(object_id, first, range.is_none()));
        };
        let end = asked_end.unwrap_or(total).min(total);
        let first_end = (start + part).min(end);
        if first_end >= end {
            return Ok(self.body(object_id, first, range.is_none()));
        }
        let etag = first.e_tag().map(str::to_owned);
        let stored = range.is_none().then(|| kept_crc32c(first.metadata())).flatten();
        let first = self.body(object_id, first, false);
        let (sdk, bucket, key, id) = (self.sdk.clone(), self.bucket.clone(), self.key(object_id), object_id.to_owned());
        let fetch = move |r: std::ops::Range<u64>| {
            let request = sdk
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .range(ByteRange::inclusive(r.start, r.end - 1).to_http_header())
                .set_if_match(etag.clone());
            let what = format!("read '{id}' (bytes {}-{})", r.start, r.end - 1);
            async move {
                let out = request.send().await.map_err(|e| map_sdk_error(e, &what))?;
                Ok(body_stream(out, what))
            }
        };
        let rest = csal_core::read_in_ranges(first, first_end..end, part, self.read_concurrency, fetch);
        Ok(ByteStream::new(rest, Some(end - start)).with_stored_checksum(stored).expect_len(end - start))
    }

    /// One GET for the whole read.
    async fn get_once(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        let out = self.get_object(object_id, range).await?;
        Ok(self.body(object_id, out, range.is_none()))
    }

    async fn get_object(&self, object_id: &str, range: Option<ByteRange>) -> Result<GetObjectOutput> {
        self.sdk
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(object_id))
            .set_range(range.map(|r| r.to_http_header()))
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &format!("read '{object_id}'")))
    }

    /// A GET's body as a stream checked for its length, with the CRC32C the
    /// object keeps when it is the whole object (`whole`).
    fn body(&self, object_id: &str, out: GetObjectOutput, whole: bool) -> ByteStream {
        let stored = whole.then(|| kept_crc32c(out.metadata())).flatten();
        body_stream(out, format!("read '{object_id}'")).with_stored_checksum(stored)
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

/// A GET's body as a `ByteStream` checked against its `Content-Length`.
fn body_stream(out: GetObjectOutput, what: String) -> ByteStream {
    let len = out.content_length().and_then(|l| u64::try_from(l).ok());
    let mut body = out.body;
    let stream = futures::stream::poll_fn(move |cx| std::pin::Pin::new(&mut body).poll_next(cx));
    let stream = futures::StreamExt::map(stream, move |item| item.map_err(|e| body_error(e, &what)));
    let body = ByteStream::new(stream, len);
    match len {
        Some(len) => body.expect_len(len),
        // No Content-Length (chunked answer): nothing to check against;
        // S3 servers send it on every GET we have seen.
        None => body,
    }
}

/// The object's length from `Content-Range: bytes 0-99/1234` (not `*`).
fn content_range_total(value: &str) -> Option<u64> {
    value.trim().strip_prefix("bytes ")?.split_once('/')?.1.trim().parse().ok()
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
