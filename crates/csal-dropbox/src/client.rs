//! The HTTP client dropbox-sdk runs on (reqwest; timeouts set here).
//!
//! How dropbox-sdk is used: the crate is built without its default clients
//! (`default-features = false`, features `dbx_files`, `dbx_users`,
//! `async_routes`), so it brings the typed routes
//! (`dropbox_sdk::files::upload`, `download`, `list_folder`, ...), the typed
//! argument/result/error types and its request logic (argument encoding,
//! `Dropbox-API-Arg`, result parsing, one retry after
//! `expired_access_token`), and we supply the HTTP client by implementing
//! its async [`HttpClient`] trait on [`SdkCall`]:
//!
//! - the SDK's hard-coded `https://{api,content,notify}.dropboxapi.com/2/`
//!   URLs are mapped onto the configured `api_url` / `content_url` (notify
//!   follows `api_url` when that is overridden), so the same code reaches Dropbox or the loopback
//!   fake;
//! - requests go through our reqwest client (rustls, connect and read
//!   timeouts, `timeout_secs`);
//! - the bearer token comes from csal-oauth's [`TokenManager`], never from
//!   an SDK cache: an [`SdkCall`] is built per API call with the manager's
//!   current token (refreshed first when close to expiry), and the SDK's
//!   `update_token` hook — which it calls on 401 `expired_access_token` —
//!   goes to [`TokenManager::refresh_after_rejection`] (single-flight, saved
//!   to the [`TokenStore`]) before the SDK repeats the call once;
//! - `Dropbox-API-Arg` is re-encoded by us: the SDK escapes characters above
//!   U+FFFF as one `\uXXXXX` (not a UTF-16 surrogate pair), which JSON reads
//!   as a different path. [`SdkCall::with_arg`] gives the correctly escaped
//!   argument, which replaces the SDK's header.
//!
//! The SDK does not expose the HTTP status or `Retry-After` header of an
//! answer; [`SdkCall`] records both (a 200 to a ranged download means the
//! server ignored `Range`; a 429's header wins over the body's
//! `retry_after`).

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use csal_core::{ExposeSecret, Result, SecretString, StorageError};
use csal_oauth::{OAuthSettings, TokenManager, TokenStore};
use dropbox_sdk::async_client_trait::{HttpClient, HttpRequest, HttpRequestResultRaw, UserAuthClient};
use futures::TryStreamExt;

use crate::config::DropboxConfig;
use crate::error::{RouteError, classify};

/// The SDK's base URLs (`Endpoint::url()`), in the order we map them.
const SDK_API: &str = "https://api.dropboxapi.com/2/";
const SDK_CONTENT: &str = "https://content.dropboxapi.com/2/";
const SDK_NOTIFY: &str = "https://notify.dropboxapi.com/2/";

pub(crate) struct DropboxClient {
    http: reqwest::Client,
    api_url: String,
    content_url: String,
    notify_url: String,
    pub(crate) tokens: Arc<TokenManager>,
    /// Root folder ("" or "/folder"), no trailing slash.
    root: String,
}

impl DropboxClient {
    pub fn new(config: &DropboxConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        let ca_file = config.trusted_ca()?;
        let http = csal_http::HttpOptions::new(concat!("csal-dropbox/", env!("CARGO_PKG_VERSION")), config.timeouts()?)
            .ca_file(ca_file.clone())
            .follow_redirects()
            .build()?;
        let tokens = TokenManager::new(
            OAuthSettings {
                token_url: config.token_url.clone().unwrap_or_else(|| crate::oauth::SPEC.token_url.to_owned()),
                client_id: config.app_key.clone(),
                client_secret: config.app_secret.clone(),
                refresh_token: config.refresh_token.clone(),
                access_token: config.access_token.clone(),
                expires_at: None,
                scope: None,
            },
            store,
        )?
        .with_ca_file(ca_file.as_ref())?;
        let api_url = config.api_url.trim_end_matches('/').to_owned();
        // Long-poll host: Dropbox's own for Dropbox's API host, else (a
        // local fake) the API host.
        let notify_url = if format!("{api_url}/2/") == SDK_API { SDK_NOTIFY.trim_end_matches("/2/") } else { &api_url };
        Ok(DropboxClient {
            http,
            notify_url: notify_url.to_owned(),
            api_url,
            content_url: config.content_url.trim_end_matches('/').to_owned(),
            tokens: Arc::new(tokens),
            root: config.root_path.clone(),
        })
    }

    /// The Dropbox path of an object id.
    pub fn path_of(&self, object_id: &str) -> String {
        format!("{}/{object_id}", self.root)
    }

    /// The Dropbox path of a list folder ("" for the root).
    pub fn folder_of(&self, path: &str) -> String {
        let path = path.trim_matches('/');
        if path.is_empty() { self.root.clone() } else { format!("{}/{path}", self.root) }
    }

    /// The object id of a Dropbox path under the root (case-insensitive prefix).
    pub fn id_of(&self, path_display: &str) -> Option<String> {
        let root_len = self.root.len();
        let head = path_display.get(..root_len)?;
        if !head.eq_ignore_ascii_case(&self.root) && head.to_lowercase() != self.root.to_lowercase() {
            return None;
        }
        path_display.get(root_len..)?.strip_prefix('/').map(str::to_owned)
    }

    /// A client for one SDK route call, holding the token manager's current
    /// bearer token (refreshed first if it is about to expire).
    pub async fn call(&self, what: &str) -> Result<SdkCall<'_>> {
        let token = self.tokens.access_token().await?;
        Ok(SdkCall {
            client: self,
            what: what.to_owned(),
            token: Mutex::new(Arc::new(token.expose_secret().to_owned())),
            api_arg: None,
            status: AtomicU16::new(0),
            retry_after: Mutex::new(None),
            content_range: Mutex::new(None),
        })
    }

    /// Our base URL for one of the SDK's.
    fn map_url(&self, url: &str) -> String {
        let (base, rest) = if let Some(rest) = url.strip_prefix(SDK_CONTENT) {
            (&self.content_url, rest)
        } else if let Some(rest) = url.strip_prefix(SDK_API) {
            (&self.api_url, rest)
        } else if let Some(rest) = url.strip_prefix(SDK_NOTIFY) {
            (&self.notify_url, rest)
        } else if let Some(rest) = url.strip_prefix("https://api.dropboxapi.com/") {
            // OAuth2 host without `/2/` (we refresh through csal-oauth; kept for completeness).
            return format!("{}/{rest}", self.api_url);
        } else {
            return url.to_owned();
        };
        format!("{base}/2/{rest}")
    }
}

/// One SDK route call: the SDK's `HttpClient`, carrying this call's token,
/// the properly escaped `Dropbox-API-Arg`, and what the answer's status and
/// `Retry-After` were.
pub(crate) struct SdkCall<'a> {
    client: &'a DropboxClient,
    /// What is being done, for error messages ("upload 'cam/x.mp4'").
    pub what: String,
    token: Mutex<Arc<String>>,
    api_arg: Option<String>,
    status: AtomicU16,
    retry_after: Mutex<Option<Duration>>,
    /// `Content-Range` of the last answer (a ranged download's span).
    content_range: Mutex<Option<String>>,
}

impl SdkCall<'_> {
    /// Send `arg` as `Dropbox-API-Arg` (content routes), escaped for HTTP.
    pub fn with_arg(mut self, arg: &impl serde::Serialize) -> Result<Self> {
        let json = serde_json::to_string(arg).map_err(|e| {
            StorageError::invalid_input(format!("{}: cannot encode the argument", self.what)).with_source(e)
        })?;
        self.api_arg = Some(escape_non_ascii(&json));
        Ok(self)
    }

    /// HTTP status of the last answer (0 before any).
    pub fn status(&self) -> u16 {
        self.status.load(Ordering::Relaxed)
    }

    /// `Content-Range` of the last answer.
    pub fn content_range(&self) -> Option<String> {
        self.content_range.lock().expect("lock").clone()
    }

    /// Classify a failed route call (the one error table, with the answer's
    /// `Retry-After` header).
    pub fn fail<E: RouteError>(&self, err: dropbox_sdk::Error<E>) -> StorageError {
        classify(err, &self.what, *self.retry_after.lock().expect("lock"))
    }
}

/// A request being built by the SDK.
pub(crate) struct SdkRequest {
    builder: reqwest::RequestBuilder,
    api_arg: Option<String>,
}

impl HttpRequest for SdkRequest {
    fn set_header(mut self, name: &str, value: &str) -> Self {
        let value = match (name.eq_ignore_ascii_case("Dropbox-API-Arg"), &self.api_arg) {
            (true, Some(ours)) => ours.as_str(),
            _ => value,
        };
        if name.eq_ignore_ascii_case("Authorization") {
            // Kept out of any Debug output of the request, as bearer_auth does.
            if let Ok(mut v) = reqwest::header::HeaderValue::from_str(value) {
                v.set_sensitive(true);
                self.builder = self.builder.header(reqwest::header::AUTHORIZATION, v);
                return self;
            }
        }
        self.builder = self.builder.header(name, value);
        self
    }
}

impl HttpClient for SdkCall<'_> {
    type Request = SdkRequest;

    async fn execute(
        &self,
        request: SdkRequest,
        body: Bytes,
    ) -> std::result::Result<HttpRequestResultRaw, dropbox_sdk::Error> {
        let resp = request
            .builder
            .body(body)
            .send()
            .await
            .map_err(|e| dropbox_sdk::Error::HttpClient(Box::new(e.without_url())))?;
        self.status.store(resp.status().as_u16(), Ordering::Relaxed);
        *self.retry_after.lock().expect("lock") = csal_http::retry_after(resp.headers());
        *self.content_range.lock().expect("lock") =
            resp.headers().get(reqwest::header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let result_header = resp.headers().get("dropbox-api-result").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_length = resp.content_length();
        let stream = resp.bytes_stream().map_err(|e| std::io::Error::other(e.without_url()));
        Ok(HttpRequestResultRaw {
            status: self.status(),
            result_header,
            content_length,
            body: Box::new(Box::pin(stream).into_async_read()),
        })
    }

    fn new_request(&self, url: &str) -> SdkRequest {
        SdkRequest { builder: self.client.http.post(self.client.map_url(url)), api_arg: self.api_arg.clone() }
    }

    /// The SDK got 401 `expired_access_token` with `old_token`: refresh
    /// through our token manager (single-flight; a concurrent caller's
    /// refresh is reused) and let the SDK repeat the call.
    async fn update_token(&self, old_token: Arc<String>) -> std::result::Result<bool, dropbox_sdk::Error> {
        tracing::debug!(what = %self.what, "access token refused; refreshing");
        let rejected = SecretString::from(old_token.as_str().to_owned());
        match self.client.tokens.refresh_after_rejection(&rejected).await {
            Ok(token) => {
                *self.token.lock().expect("lock") = Arc::new(token.expose_secret().to_owned());
                Ok(true)
            }
            Err(e) => Err(dropbox_sdk::Error::HttpClient(Box::new(e))),
        }
    }

    fn token(&self) -> Option<Arc<String>> {
        Some(self.token.lock().expect("lock").clone())
    }
}

impl UserAuthClient for SdkCall<'_> {}

/// `Dropbox-API-Arg` must be ASCII: escape the rest as `\uXXXX` (UTF-16
/// units, surrogate pairs above U+FFFF, as JSON requires), and DEL too.
pub(crate) fn escape_non_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && c != '\x7f' {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

pub(crate) use csal_core::time_format::parse_rfc3339 as parse_time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        let t = parse_time("2025-11-29T09:51:11Z").unwrap();
        assert_eq!(t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(), 1_764_409_871);
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn api_arg_is_ascii_and_round_trips_above_the_bmp() {
        let arg = escape_non_ascii(&serde_json::json!({"path": "/ファイル ü 😀 𝒜1"}).to_string());
        assert!(arg.is_ascii());
        let back: serde_json::Value = serde_json::from_str(&arg).unwrap();
        assert_eq!(back["path"], "/ファイル ü 😀 𝒜1");
    }

    fn client() -> DropboxClient {
        let config: DropboxConfig = serde_json::from_value(serde_json::json!({
            "app_key": "k", "refresh_token": "r",
            "api_url": "http://127.0.0.1:9/", "content_url": "http://127.0.0.1:8",
        }))
        .unwrap();
        DropboxClient::new(&config, None).unwrap()
    }

    #[test]
    fn sdk_hosts_map_onto_the_configured_urls() {
        let c = client();
        assert_eq!(
            c.map_url("https://api.dropboxapi.com/2/files/get_metadata"),
            "http://127.0.0.1:9/2/files/get_metadata"
        );
        assert_eq!(c.map_url("https://content.dropboxapi.com/2/files/upload"), "http://127.0.0.1:8/2/files/upload");
        assert_eq!(
            c.map_url("https://notify.dropboxapi.com/2/files/list_folder/longpoll"),
            "http://127.0.0.1:9/2/files/list_folder/longpoll"
        );
        assert_eq!(c.map_url("https://api.dropboxapi.com/oauth2/token"), "http://127.0.0.1:9/oauth2/token");
    }
}
