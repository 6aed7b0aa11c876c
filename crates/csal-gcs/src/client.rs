//! The HTTP client: one `reqwest::Client` with connect / read timeouts, the
//! JSON API's URLs, and bearer tokens on every request.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{RequestBuilder, Response, Url};

use csal_core::{Result, StorageError};

use crate::auth::TokenSource;
use crate::config::Settings;
use crate::error;

/// Everything but RFC 3986 unreserved characters is escaped in a path segment.
pub(crate) const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

pub(crate) fn encode(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

pub(crate) struct GcsClient {
    pub http: reqwest::Client,
    pub settings: Settings,
    pub tokens: TokenSource,
}

impl GcsClient {
    pub(crate) fn new(settings: Settings) -> Result<GcsClient> {
        // Redirects are not followed: a resumable upload's "308 Resume
        // Incomplete" is not a redirect.
        let http = csal_http::HttpOptions::new(concat!("csal-gcs/", env!("CARGO_PKG_VERSION")), settings.timeouts)
            .ca_file(settings.ca_file.clone())
            .build()?;
        let tokens = TokenSource::new(settings.credentials.clone(), settings.request_timeout);
        Ok(GcsClient { http, settings, tokens })
    }

    pub(crate) fn endpoint_url(&self, path: &str) -> Result<Url> {
        self.url(path)
    }

    fn url(&self, path: &str) -> Result<Url> {
        Url::parse(&format!("{}{path}", self.settings.endpoint))
            .map_err(|e| StorageError::invalid_input("cannot build a request URL").with_source(e))
    }

    pub(crate) fn bucket_url(&self) -> Result<Url> {
        self.url(&format!("/storage/v1/b/{}", encode(&self.settings.bucket)))
    }

    pub(crate) fn objects_url(&self) -> Result<Url> {
        self.url(&format!("/storage/v1/b/{}/o", encode(&self.settings.bucket)))
    }

    pub(crate) fn object_url(&self, name: &str) -> Result<Url> {
        self.url(&format!("/storage/v1/b/{}/o/{}", encode(&self.settings.bucket), encode(name)))
    }

    /// `rewriteTo` from one object of the bucket to another (server-side copy).
    pub(crate) fn rewrite_url(&self, from: &str, to: &str) -> Result<Url> {
        let bucket = encode(&self.settings.bucket);
        self.url(&format!("/storage/v1/b/{bucket}/o/{}/rewriteTo/b/{bucket}/o/{}", encode(from), encode(to)))
    }

    pub(crate) fn upload_url(&self) -> Result<Url> {
        self.url(&format!("/upload/storage/v1/b/{}/o", encode(&self.settings.bucket)))
    }

    /// Add the bearer token (none in anonymous mode).
    pub(crate) async fn authorize(&self, request: RequestBuilder) -> Result<RequestBuilder> {
        Ok(match self.tokens.token().await? {
            Some(token) => request.bearer_auth(token),
            None => request,
        })
    }

    /// Send; only transport failures are errors (callers look at the status).
    pub(crate) async fn send_raw(&self, request: RequestBuilder, what: &str) -> Result<Response> {
        let request = self.authorize(request).await?;
        request.send().await.map_err(|e| error::from_reqwest(e, what))
    }

    /// Send with the request timeout; non-2xx answers become classified errors.
    pub(crate) async fn send(&self, request: RequestBuilder, what: &str) -> Result<Response> {
        let response = self.send_raw(request.timeout(self.settings.request_timeout), what).await?;
        if response.status().is_success() { Ok(response) } else { Err(error::from_response(response, what).await) }
    }

    /// Send and parse a JSON answer.
    pub(crate) async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        request: RequestBuilder,
        what: &str,
    ) -> Result<T> {
        csal_http::read_json(self.send(request, what).await?, what).await
    }
}

/// The object resource fields we use.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ObjectResource {
    pub name: String,
    #[serde(default, deserialize_with = "string_number")]
    pub size: u64,
    pub updated: Option<String>,
    pub time_created: Option<String>,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub crc32c: Option<String>,
    pub generation: Option<String>,
    #[serde(default)]
    pub metadata: Option<std::collections::BTreeMap<String, String>>,
}

fn string_number<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum N {
        S(String),
        N(u64),
    }
    match <N as serde::Deserialize>::deserialize(d)? {
        N::S(s) => s.parse().map_err(serde::de::Error::custom),
        N::N(n) => Ok(n),
    }
}

impl ObjectResource {
    /// The CRC32C GCS reports (base64 of the big-endian value).
    pub(crate) fn crc32c_value(&self) -> Option<u32> {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD.decode(self.crc32c.as_deref()?).ok()?;
        Some(u32::from_be_bytes(raw.try_into().ok()?))
    }

    pub(crate) fn to_meta(&self) -> csal_core::ObjectMeta {
        let modified = self
            .updated
            .as_deref()
            .or(self.time_created.as_deref())
            .and_then(|t| humantime::parse_rfc3339_weak(t.trim_end_matches('Z')).ok());
        csal_core::ObjectMeta {
            object_id: self.name.clone(),
            size: self.size,
            modified,
            content_type: self.content_type.clone(),
            etag: self.etag.clone(),
            checksum: self.crc32c_value().map(csal_core::Checksum::crc32c),
            metadata: self.metadata.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_one_escaped_segment() {
        assert_eq!(encode("a/b c/ü.mp4"), "a%2Fb%20c%2F%C3%BC.mp4");
        assert_eq!(encode("x-1_2.~"), "x-1_2.~");
    }

    #[test]
    fn object_resource_converts_to_meta() {
        let r: ObjectResource = serde_json::from_str(
            r#"{"name":"a/b","size":"5","updated":"2026-11-29T09:51:26.922548Z","crc32c":"mnG7TA==","metadata":{"k":"v"}}"#,
        )
        .unwrap();
        let m = r.to_meta();
        assert_eq!(m.size, 5);
        assert!(m.modified.is_some());
        assert_eq!(m.checksum, Some(csal_core::Checksum::crc32c(crc32c::crc32c(b"hello"))));
        assert_eq!(m.metadata.get("k").map(String::as_str), Some("v"));
    }
}
