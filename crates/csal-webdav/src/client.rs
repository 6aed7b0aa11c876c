//! HTTP plumbing: one `reqwest::Client` (timeouts, TLS) wrapped by
//! `reqwest_dav::Client`, which applies Basic or Digest auth to every request
//! (`start_request`). Bodies and headers are then set on the returned
//! `reqwest::RequestBuilder`, so uploads stream (`Body::wrap_stream`).

use std::collections::HashSet;
use std::sync::Mutex;

use csal_core::{ExposeSecret, Result, SecretString, StorageError};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::config::DavAuth;
use crate::error::{dav_error, status_error, transport_error};

/// Characters left as they are in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// One WebDAV endpoint (a base collection URL) with credentials.
pub(crate) struct DavClient {
    dav: reqwest_dav::Client,
    /// Base URL, always with a trailing slash.
    pub base: url::Url,
    /// Decoded path of `base` (with trailing slash), to turn hrefs into ids.
    base_path: String,
    digest: bool,
    /// Collections known to exist (relative paths), to skip MKCOL.
    known_dirs: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for DavClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // reqwest_dav's own Debug would print the password: never use it.
        f.debug_struct("DavClient").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

/// Parse and normalise a base collection URL (trailing slash added).
pub(crate) fn parse_base(field: &str, text: &str) -> Result<url::Url> {
    let mut url = url::Url::parse(text.trim())
        .map_err(|_| StorageError::invalid_config(format!("field '{field}' is not a valid URL")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(StorageError::invalid_config(format!("field '{field}' must be an http:// or https:// URL")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(StorageError::invalid_config(format!(
            "field '{field}' must not carry credentials: use the username and password fields"
        )));
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Refuse Basic credentials over `http://` to a host that is not this
/// machine (the password would cross the network in clear) unless the
/// operator opted in with `allow_field`.
pub(crate) fn check_basic_transport(field: &str, base: &url::Url, allow_field: &str, allowed: bool) -> Result<()> {
    let loopback = match base.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    };
    if base.scheme() == "https" || loopback || allowed {
        return Ok(());
    }
    Err(StorageError::invalid_config(format!(
        "field '{field}': Basic authentication over http:// to another machine sends the password in clear text; \
         use https://, digest authentication, or set '{allow_field}' to true to accept that"
    )))
}

/// Percent-encode a relative path segment by segment.
pub(crate) fn encode_path(rel: &str) -> String {
    rel.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

impl DavClient {
    pub fn new(
        http: reqwest::Client,
        base: url::Url,
        auth: DavAuth,
        username: Option<&str>,
        password: Option<&SecretString>,
    ) -> Result<Self> {
        let password = password.map(|p| p.expose_secret().to_owned()).unwrap_or_default();
        let (dav_auth, digest) = match (auth, username) {
            (DavAuth::None, _) | (_, None) => (reqwest_dav::Auth::Anonymous, false),
            (DavAuth::Basic, Some(u)) => (reqwest_dav::Auth::Basic(u.to_owned(), password), false),
            (DavAuth::Digest, Some(u)) => (reqwest_dav::Auth::Digest(u.to_owned(), password), true),
        };
        let dav = reqwest_dav::ClientBuilder::new()
            .set_agent(http)
            .set_host(base.as_str().to_owned())
            .set_auth(dav_auth)
            .build()
            .map_err(|e| dav_error(e, "building the WebDAV client"))?;
        let base_path = percent_decode_str(base.path()).decode_utf8_lossy().into_owned();
        Ok(DavClient { dav, base, base_path, digest, known_dirs: Mutex::new(HashSet::new()) })
    }

    /// Absolute URL of a relative path (for `Destination` headers).
    pub fn url_of(&self, rel: &str) -> String {
        format!("{}{}", self.base.as_str(), encode_path(rel))
    }

    /// A request on `rel` (relative, unencoded) with auth applied.
    pub async fn request(&self, method: Method, rel: &str) -> Result<RequestBuilder> {
        let what = format!("{method} {rel}");
        self.dav.start_request(method, &encode_path(rel)).await.map_err(|e| dav_error(e, &what))
    }

    /// Send, mapping transport errors; a Digest 401 resets the nonce so the
    /// next request negotiates afresh.
    pub async fn send(&self, req: RequestBuilder, what: &str) -> Result<Response> {
        let resp = req.send().await.map_err(|e| transport_error(e, what))?;
        if resp.status() == StatusCode::UNAUTHORIZED && self.digest {
            *self.dav.digest_auth.lock().await = None;
        }
        Ok(resp)
    }

    /// A body-less request with headers, retried once when a Digest nonce
    /// went stale. Returns the response whatever its status.
    pub async fn simple(&self, method: Method, rel: &str, headers: &[(HeaderName, String)]) -> Result<Response> {
        self.simple_with_body(method, rel, headers, None).await
    }

    pub async fn simple_with_body(
        &self,
        method: Method,
        rel: &str,
        headers: &[(HeaderName, String)],
        body: Option<&'static str>,
    ) -> Result<Response> {
        let what = format!("{method} {rel}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.request(method.clone(), rel).await?;
            for (name, value) in headers {
                let value = HeaderValue::from_str(value)
                    .map_err(|_| StorageError::invalid_input(format!("{what}: header {name} is not valid")))?;
                req = req.header(name, value);
            }
            if let Some(b) = body {
                req = req.body(b);
            }
            let resp = self.send(req, &what).await?;
            if resp.status() == StatusCode::UNAUTHORIZED && self.digest && attempt == 1 && is_stale(resp.headers()) {
                continue;
            }
            return Ok(resp);
        }
    }

    /// Create `dir` and its parents (MKCOL, 405 = exists), cached.
    pub async fn ensure_dirs(&self, dir: &str) -> Result<()> {
        if dir.is_empty() || self.known_dirs.lock().expect("lock").contains(dir) {
            return Ok(());
        }
        let mut path = String::new();
        for segment in dir.split('/') {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(segment);
            if self.known_dirs.lock().expect("lock").contains(&path) {
                continue;
            }
            let rel = format!("{path}/");
            let resp = self.simple(Method::from_bytes(b"MKCOL").expect("method"), &rel, &[]).await?;
            match resp.status().as_u16() {
                // 405: already there.
                200..=299 | 405 => {}
                // A concurrent MKCOL of the same collection can lose the race
                // with another status (Apache: 403): fine if it exists now.
                _ if self.is_collection(&rel).await => {}
                _ => return Err(status_error(resp.status(), resp.headers(), &format!("MKCOL {path}"))),
            }
            self.known_dirs.lock().expect("lock").insert(path.clone());
        }
        Ok(())
    }

    /// Whether `rel` exists as a collection (PROPFIND Depth 0).
    async fn is_collection(&self, rel: &str) -> bool {
        let headers = [(HeaderName::from_static("depth"), "0".to_owned())];
        let propfind = Method::from_bytes(b"PROPFIND").expect("method");
        match self.simple(propfind, rel, &headers).await {
            Ok(resp) if resp.status().as_u16() == 207 => csal_http::read_answer(resp, rel)
                .await
                .is_ok_and(|t| String::from_utf8_lossy(&t).contains("collection")),
            _ => false,
        }
    }

    /// Forget cached collections (after a 409 Conflict: a parent vanished).
    pub fn forget_dirs(&self) {
        self.known_dirs.lock().expect("lock").clear();
    }

    /// Turn an href of a PROPFIND response into a path relative to the base
    /// (decoded, no trailing slash); `None` if it is outside the base.
    pub fn rel_of_href(&self, href: &str) -> Option<String> {
        let href = href.trim();
        let path = match href.find("://") {
            Some(i) => {
                let after = &href[i + 3..];
                after.find('/').map(|j| &after[j..]).unwrap_or("/")
            }
            None => href,
        };
        let decoded = percent_decode_str(path).decode_utf8().ok()?;
        let rest = if decoded.as_ref() == self.base_path.trim_end_matches('/') {
            ""
        } else {
            decoded.strip_prefix(self.base_path.as_str())?
        };
        Some(rest.trim_end_matches('/').to_owned())
    }
}

fn is_stale(headers: &HeaderMap) -> bool {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().replace(' ', "").contains("stale=true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> DavClient {
        let http = reqwest::Client::new();
        DavClient::new(http, parse_base("url", base).unwrap(), DavAuth::None, None, None).unwrap()
    }

    #[test]
    fn hrefs_become_relative_ids() {
        let c = client("http://h:1/remote.php/dav/files/t%C3%BC");
        assert_eq!(c.base.as_str(), "http://h:1/remote.php/dav/files/t%C3%BC/");
        assert_eq!(c.rel_of_href("/remote.php/dav/files/t%C3%BC/a/b%20c.bin").as_deref(), Some("a/b c.bin"));
        assert_eq!(c.rel_of_href("http://h:1/remote.php/dav/files/t%C3%BC/dir/").as_deref(), Some("dir"));
        assert_eq!(c.rel_of_href("/remote.php/dav/files/t%C3%BC").as_deref(), Some(""));
        assert_eq!(c.rel_of_href("/elsewhere/x"), None);
    }

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(encode_path("a b/ü?#%.mp4"), "a%20b/%C3%BC%3F%23%25.mp4");
    }

    #[test]
    fn basic_over_plain_http_needs_loopback_https_or_an_opt_in() {
        let check = |u: &str, allowed| check_basic_transport("url", &parse_base("url", u).unwrap(), "opt", allowed);
        for ok in ["https://nas.example/dav", "http://127.0.0.1:8080/dav", "http://[::1]/dav", "http://localhost/d"] {
            check(ok, false).unwrap();
        }
        for bad in ["http://nas.example/dav", "http://10.1.2.3/dav", "http://127.0.0.1.nip.io/dav"] {
            let e = check(bad, false).unwrap_err();
            assert!(e.message().contains("'url'") && e.message().contains("'opt'"), "{e}");
            check(bad, true).unwrap();
        }
    }

    #[test]
    fn base_urls_with_credentials_or_odd_schemes_are_refused() {
        assert!(parse_base("url", "ftp://h/x").is_err());
        let e = parse_base("url", "https://u:p@h/x").unwrap_err();
        assert!(e.message().contains("'url'") && !e.message().contains(":p@"));
    }
}
