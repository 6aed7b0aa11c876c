//! A small WebDAV server with quotas, from RFC 4918 (WebDAV) and RFC 4331
//! ("Quota and Size Properties for DAV Collections"), for the part of the
//! `webdav` provider the emulators cannot show: a quota a test sets and
//! fills (wsgidav answers the properties with its whole disk's usage;
//! Apache 2.4's mod_dav_fs does not answer them).
//!
//! - RFC 4331 §3-4: `DAV:quota-available-bytes` and `DAV:quota-used-bytes`
//!   are live properties of collections, returned by PROPFIND only when
//!   asked for by name (not by `allprop`); a server without a quota answers
//!   them in a `404 Not Found` propstat. §6: a PUT past the quota fails
//!   with `507 Insufficient Storage`. Used bytes are what the fake stores.
//! - RFC 4918 §9.1 PROPFIND (`Depth: 0 | 1`, 207 multistatus, hrefs of
//!   collections ending in `/`), §9.3 MKCOL (405 when it exists, 409
//!   without a parent), §9.7 PUT (409 without a parent; RFC 7232
//!   `If-None-Match: *` → 412 when it exists), §9.9 MOVE (`Destination`,
//!   `Overwrite: F` → 412 when the target exists), §9.6 DELETE.
//!
//! Simplifications: no auth, no locks, no dead properties, GET ignores
//! `Range` (the provider copes with servers that do), everything in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Default)]
struct Store {
    files: BTreeMap<String, Bytes>,
    /// Collections by path without slashes at either end ("" is the root).
    dirs: BTreeSet<String>,
    /// The quota (None: the quota properties are answered 404).
    quota: Option<u64>,
}

impl Store {
    fn used(&self) -> u64 {
        self.files.values().map(|b| b.len() as u64).sum()
    }
}

type Shared = Arc<Mutex<Store>>;

/// A running WebDAV fake on 127.0.0.1; stops when dropped.
pub struct WebDavFake {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebDavFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebDavFake {
    /// Start the server on 127.0.0.1 (a free port), with an empty root and no quota.
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(Store::default()));
        state.lock().expect("lock").dirs.insert(String::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new().fallback(handle).layer(DefaultBodyLimit::max(64 << 20)).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebDavFake { addr, state, task }
    }

    /// The server's root collection, with a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Limit what may be stored (None: no quota, the properties answer 404).
    pub fn set_quota(&self, bytes: Option<u64>) {
        self.state.lock().expect("lock").quota = bytes;
    }

    /// Store a file directly (its collections must exist), as another client would.
    pub fn put_file(&self, path: &str, data: Vec<u8>) {
        self.state.lock().expect("lock").files.insert(path.trim_matches('/').to_owned(), Bytes::from(data));
    }

    /// Number of stored files.
    pub fn file_count(&self) -> usize {
        self.state.lock().expect("lock").files.len()
    }
}

fn status(code: StatusCode) -> Response {
    code.into_response()
}

/// The request path, percent-decoded, without slashes at either end.
fn path_of(raw: &str) -> Option<String> {
    Some(crate::gdrive::percent_decode(raw)?.trim_matches('/').to_owned())
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

fn href(path: &str, dir: bool) -> String {
    let mut out = String::from("/");
    for (i, seg) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(url::form_urlencoded::byte_serialize(seg.as_bytes()).map(|s| s.replace('+', "%20")));
    }
    if dir && out != "/" {
        out.push('/');
    }
    out
}

async fn handle(State(state): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let Some(path) = path_of(uri.path()) else { return status(StatusCode::BAD_REQUEST) };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut s = state.lock().expect("lock");
    match method.as_str() {
        "PROPFIND" => propfind(&s, &path, header("depth").as_deref().unwrap_or("1"), &body),
        "MKCOL" if s.dirs.contains(&path) || s.files.contains_key(&path) => status(StatusCode::METHOD_NOT_ALLOWED),
        "MKCOL" if !s.dirs.contains(parent(&path)) => status(StatusCode::CONFLICT),
        "MKCOL" => {
            s.dirs.insert(path);
            status(StatusCode::CREATED)
        }
        "PUT" if s.dirs.contains(&path) => status(StatusCode::METHOD_NOT_ALLOWED),
        "PUT" if !s.dirs.contains(parent(&path)) => status(StatusCode::CONFLICT),
        "PUT" if header("if-none-match").as_deref() == Some("*") && s.files.contains_key(&path) => {
            status(StatusCode::PRECONDITION_FAILED)
        }
        "PUT" => {
            let replaced = s.files.get(&path).map_or(0, |b| b.len() as u64);
            if s.quota.is_some_and(|q| s.used() - replaced + body.len() as u64 > q) {
                return status(StatusCode::INSUFFICIENT_STORAGE);
            }
            s.files.insert(path, body);
            status(StatusCode::CREATED)
        }
        "GET" => match s.files.get(&path) {
            Some(data) => (StatusCode::OK, data.clone()).into_response(),
            None => status(StatusCode::NOT_FOUND),
        },
        "DELETE" => {
            if s.files.remove(&path).is_some() {
                return status(StatusCode::NO_CONTENT);
            }
            if path.is_empty() || !s.dirs.remove(&path) {
                return status(StatusCode::NOT_FOUND);
            }
            let inside = format!("{path}/");
            s.files.retain(|k, _| !k.starts_with(&inside));
            s.dirs.retain(|k| !k.starts_with(&inside));
            status(StatusCode::NO_CONTENT)
        }
        "MOVE" => {
            let Some(dest) =
                header("destination").and_then(|d| url::Url::parse(&d).ok()).and_then(|u| path_of(u.path()))
            else {
                return status(StatusCode::BAD_REQUEST);
            };
            if !s.dirs.contains(parent(&dest)) {
                return status(StatusCode::CONFLICT);
            }
            let exists = s.files.contains_key(&dest);
            if exists && header("overwrite").as_deref() == Some("F") {
                return status(StatusCode::PRECONDITION_FAILED);
            }
            match s.files.remove(&path) {
                Some(data) => {
                    s.files.insert(dest, data);
                    status(if exists { StatusCode::NO_CONTENT } else { StatusCode::CREATED })
                }
                None => status(StatusCode::NOT_FOUND),
            }
        }
        _ => status(StatusCode::METHOD_NOT_ALLOWED),
    }
}

fn propfind(s: &Store, path: &str, depth: &str, body: &[u8]) -> Response {
    let is_dir = s.dirs.contains(path);
    if !is_dir && !s.files.contains_key(path) {
        return status(StatusCode::NOT_FOUND);
    }
    let request = String::from_utf8_lossy(body);
    let wants_quota = request.contains("quota-available-bytes") || request.contains("quota-used-bytes");
    let mut out = String::from(r#"<?xml version="1.0" encoding="utf-8"?><D:multistatus xmlns:D="DAV:">"#);
    let mut entry = |p: &str, dir: bool| {
        out.push_str(&format!("<D:response><D:href>{}</D:href><D:propstat><D:prop>", href(p, dir)));
        if dir {
            out.push_str("<D:resourcetype><D:collection/></D:resourcetype>");
        } else {
            out.push_str(&format!("<D:resourcetype/><D:getcontentlength>{}</D:getcontentlength>", s.files[p].len()));
        }
        let quota = (dir && wants_quota).then_some(s.quota).flatten();
        if let Some(q) = quota {
            let used = s.used();
            out.push_str(&format!(
                "<D:quota-available-bytes>{}</D:quota-available-bytes><D:quota-used-bytes>{used}</D:quota-used-bytes>",
                q.saturating_sub(used)
            ));
        }
        out.push_str("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>");
        if wants_quota && quota.is_none() {
            out.push_str(
                "<D:propstat><D:prop><D:quota-available-bytes/><D:quota-used-bytes/></D:prop>\
                 <D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>",
            );
        }
        out.push_str("</D:response>");
    };
    entry(path, is_dir);
    if is_dir && depth != "0" {
        let inside = |k: &str| !k.is_empty() && parent(k) == path && k != path;
        for d in s.dirs.iter().filter(|d| inside(d)) {
            entry(d, true);
        }
        for f in s.files.keys().filter(|f| inside(f)) {
            entry(f, false);
        }
    }
    out.push_str("</D:multistatus>");
    Response::builder()
        .status(StatusCode::MULTI_STATUS)
        .header("content-type", "application/xml; charset=utf-8")
        .body(Body::from(out))
        .expect("response")
}
