//! Authenticated Swift requests: URL building, the token, and one retry
//! with a fresh token after a 401.

use std::sync::atomic::{AtomicBool, Ordering};

use csal_core::{Result, StorageError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::auth::{Authenticator, Session};
use crate::config::Settings;
use crate::error::{status_error, transport_error};

/// Characters kept as they are in a URL path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

pub(crate) fn encode_path(name: &str) -> String {
    name.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

pub(crate) struct SwiftClient {
    pub http: reqwest::Client,
    pub auth: Authenticator,
    pub settings: Settings,
    containers_ready: AtomicBool,
}

pub(crate) fn http_client(settings: &Settings) -> Result<reqwest::Client> {
    // Redirects are followed as before: some gateways put Swift behind one.
    csal_http::HttpOptions::new(concat!("csal-swift/", env!("CARGO_PKG_VERSION")), settings.timeouts)
        .accept_invalid_certs(settings.accept_invalid_certs)
        .ca_file(settings.ca_file.clone())
        .follow_redirects()
        .build()
}

impl SwiftClient {
    pub fn new(settings: Settings) -> Result<Self> {
        let http = http_client(&settings)?;
        let auth = Authenticator::new(settings.auth.clone(), http.clone());
        Ok(SwiftClient { http, auth, settings, containers_ready: AtomicBool::new(false) })
    }

    pub fn container_url(session: &Session, container: &str) -> String {
        format!("{}/{}", session.storage_url, utf8_percent_encode(container, SEGMENT))
    }

    pub fn object_url(session: &Session, container: &str, name: &str) -> String {
        format!("{}/{}", session.storage_url, Self::object_url_path(container, name))
    }

    /// `container/name`, encoded (the tail of an object's URL; `X-Copy-From` takes it).
    pub fn object_url_path(container: &str, name: &str) -> String {
        format!("{}/{}", utf8_percent_encode(container, SEGMENT), encode_path(name))
    }

    /// Send a request built by `build` (called again for the retry), with
    /// the token; a 401 refreshes the token and tries once more.
    pub async fn send(&self, what: &str, build: impl Fn(&Session) -> RequestBuilder) -> Result<Response> {
        let session = self.auth.session().await?;
        let resp = self.send_with(&session, what, build(&session)).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        self.auth.invalidate(&session.token).await;
        let session = self.auth.session().await?;
        self.send_with(&session, what, build(&session)).await
    }

    /// Send once (for bodies that cannot be replayed). A 401 drops the token
    /// and is reported as transient, so a replayable write is retried with
    /// a fresh token by the retry layer.
    pub async fn send_once(&self, session: &Session, what: &str, req: RequestBuilder) -> Result<Response> {
        let resp = req.header("X-Auth-Token", &*session.token).send().await.map_err(|e| transport_error(e, what))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            self.auth.invalidate(&session.token).await;
            return Err(StorageError::transient(format!(
                "{what}: token refused (expired?); a new one is fetched on the next try"
            )));
        }
        Ok(resp)
    }

    async fn send_with(&self, session: &Session, what: &str, req: RequestBuilder) -> Result<Response> {
        req.header("X-Auth-Token", &*session.token).send().await.map_err(|e| transport_error(e, what))
    }

    /// Create the container and the segment container once (PUT is idempotent).
    pub async fn ensure_containers(&self) -> Result<()> {
        if !self.settings.create_container || self.containers_ready.load(Ordering::Relaxed) {
            return Ok(());
        }
        for container in [&self.settings.container, &self.settings.segment_container] {
            let what = format!("PUT container {container}");
            let resp = self.send(&what, |s| self.http.request(Method::PUT, Self::container_url(s, container))).await?;
            if !resp.status().is_success() {
                return Err(status_error(resp.status(), resp.headers(), &what));
            }
        }
        self.containers_ready.store(true, Ordering::Relaxed);
        Ok(())
    }
}
