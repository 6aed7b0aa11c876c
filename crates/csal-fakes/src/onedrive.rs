//! A fake of Microsoft Graph v1.0 OneDrive (driveItem) endpoints, from the
//! public documentation at <https://learn.microsoft.com/en-us/graph/api/resources/onedrive>:
//!
//! - "Addressing items by path": `/me/drive/root:/{path}` (percent-encoded),
//!   `/me/drive/root:/{path}:/content`, `:/children`, `:/createUploadSession`.
//! - "Upload small files" (PUT `:/content` with
//!   `@microsoft.graph.conflictBehavior=fail` → 201, or 409 `nameAlreadyExists`).
//! - "Upload large files with an upload session" (driveItem:
//!   createUploadSession): `uploadUrl` takes PUTs without an Authorization
//!   header, each with `Content-Range: bytes s-e/total`; fragments must be
//!   multiples of 320 KiB (except the last) and at most 60 MiB; 202 with
//!   `nextExpectedRanges` until the last byte, then 201 with the driveItem;
//!   a fragment that was already received gets 416; DELETE cancels (204).
//! - "Download a file": GET `:/content` answers 302 with a pre-authenticated
//!   `Location`, which honours `Range` (206, or 416 past the end).
//! - "List children": `value` + `@odata.nextLink` paging with `$top`.
//! - drive resource and "quota resource type"
//!   (<https://learn.microsoft.com/en-us/graph/api/resources/quota>): GET
//!   `/me/drive` answers the drive with `quota { total, used, remaining,
//!   deleted, state }`, `state` one of `normal`, `nearing` (less than 10%
//!   remaining), `critical` (less than 1%), `exceeded` (used past total).
//!   The fake's `used` is what it stores plus a configurable use by other
//!   services (OneDrive Personal's quota is shared with Outlook).
//! - "Error responses": `{"error": {"code", "message"}}`; 401
//!   `InvalidAuthenticationToken`, 404 `itemNotFound`, 429/503 with
//!   `Retry-After` ("Microsoft Graph throttling guidance").
//! - Microsoft identity platform, "OAuth 2.0 authorization code flow":
//!   `GET /{tenant}/oauth2/v2.0/authorize` (PKCE) and the token endpoint's
//!   `grant_type=authorization_code` (see [`crate::authcode`]).
//! - Microsoft identity platform, "Refresh the access token":
//!   `POST /{tenant}/oauth2/v2.0/token`, `grant_type=refresh_token`; the
//!   answer carries a new refresh token; a revoked one gets 400 `invalid_grant`.

// Handlers return `Result<Response, Response>` so `?` can answer an error
// response early; the size of an axum Response does not matter in a fake.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Form, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Client id the fake's token endpoint accepts.
pub const CLIENT_ID: &str = "fake-onedrive-client";
/// Client secret the fake accepts.
pub const CLIENT_SECRET: &str = "fake-onedrive-secret";
/// The first refresh token the fake accepts (each refresh issues a new one).
pub const REFRESH_TOKEN: &str = "fake-onedrive-refresh-0";
/// Upload-session fragments are multiples of this (320 KiB).
pub const FRAGMENT_UNIT: usize = 320 * 1024;
/// Largest fragment (60 MiB).
pub const MAX_FRAGMENT: usize = 60 * 1024 * 1024;

#[derive(Clone)]
struct Item {
    display: String,
    id: String,
    etag: String,
    data: Bytes,
    modified: SystemTime,
}

struct Session {
    path: String,
    total: u64,
    data: Vec<u8>,
}

#[derive(Default)]
struct Store {
    files: BTreeMap<String, Item>,
    folders: BTreeSet<String>,
    sessions: HashMap<String, Session>,
    valid_tokens: HashSet<String>,
    expired_tokens: HashSet<String>,
    refresh_tokens: HashSet<String>,
    revoked: bool,
    throttle: Vec<(u16, u64)>,
    /// `quota.total` (None: the drive answers without a `quota` facet).
    quota_total: Option<u64>,
    /// Bytes other services use of the quota.
    used_elsewhere: u64,
}

struct Shared {
    store: Mutex<Store>,
    counter: AtomicU64,
    token_requests: AtomicU64,
    fragments: AtomicU64,
    received: AtomicU64,
    throttled: AtomicU64,
    base: Mutex<String>,
    auth: crate::authcode::AuthCodes,
}

/// A running fake OneDrive (Graph + token endpoint). Dropping it stops it.
pub struct FakeOneDrive {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOneDrive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOneDrive {
    /// Start the fake on 127.0.0.1 (a free port), with an empty drive.
    pub async fn start() -> FakeOneDrive {
        let mut store = Store { quota_total: Some(1 << 40), ..Store::default() };
        store.refresh_tokens.insert(REFRESH_TOKEN.to_owned());
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            counter: AtomicU64::new(1),
            token_requests: AtomicU64::new(0),
            fragments: AtomicU64::new(0),
            received: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            base: Mutex::new(String::new()),
            auth: Default::default(),
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(token))
            .route("/{tenant}/oauth2/v2.0/authorize", axum::routing::get(authorize))
            .fallback(graph)
            .layer(DefaultBodyLimit::max(MAX_FRAGMENT + 1024 * 1024))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        *shared.base.lock().expect("lock") = format!("http://{addr}");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOneDrive { addr, shared, task }
    }

    /// Graph root, like `https://graph.microsoft.com/v1.0`.
    pub fn graph_url(&self) -> String {
        format!("http://{}/v1.0", self.addr)
    }

    /// Token endpoint for tenant `common`.
    pub fn token_url(&self) -> String {
        format!("http://{}/common/oauth2/v2.0/token", self.addr)
    }

    /// Authorize endpoint for tenant `common`: answers as if the user
    /// consented, with a 302 to the redirect URI.
    pub fn authorize_url(&self) -> String {
        format!("http://{}/common/oauth2/v2.0/authorize", self.addr)
    }

    /// Answer the next authorizations with `error=access_denied`, or consent again.
    pub fn deny_authorization(&self, deny: bool) {
        self.shared.auth.set_deny(deny);
    }

    /// Authorization codes exchanged for tokens.
    pub fn code_exchanges(&self) -> u64 {
        self.shared.auth.exchanges.load(Ordering::Relaxed)
    }

    /// A fresh valid access token, without the OAuth flow.
    pub fn issue_access_token(&self) -> String {
        let t = format!("fake-graph-access-{}", self.shared.counter.fetch_add(1, Ordering::Relaxed));
        self.shared.store.lock().expect("lock").valid_tokens.insert(t.clone());
        t
    }

    /// Every access token issued so far expires now.
    pub fn expire_access_tokens(&self) {
        let mut s = self.shared.store.lock().expect("lock");
        let all: Vec<String> = s.valid_tokens.drain().collect();
        s.expired_tokens.extend(all);
    }

    /// Refresh tokens are revoked: refreshes get `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.store.lock().expect("lock").revoked = true;
    }

    /// Answer the next authorised Graph calls with these statuses (429 or
    /// 503), each with `Retry-After: secs`.
    pub fn inject_throttle(&self, status: u16, count: usize, secs: u64) {
        let mut s = self.shared.store.lock().expect("lock");
        s.throttle.extend(std::iter::repeat_n((status, secs), count));
    }

    /// The drive's quota (None: no `quota` facet) and the bytes other
    /// services use of it.
    pub fn set_quota(&self, total: Option<u64>, used_elsewhere: u64) {
        let mut s = self.shared.store.lock().expect("lock");
        s.quota_total = total;
        s.used_elsewhere = used_elsewhere;
    }
    /// Calls to the token endpoint.
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::Relaxed)
    }
    /// Fragments accepted by upload sessions.
    pub fn fragments(&self) -> u64 {
        self.shared.fragments.load(Ordering::Relaxed)
    }
    /// Bytes received by upload sessions so far (fragments accepted).
    pub fn bytes_received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }
    /// Graph calls answered with an injected throttle.
    pub fn throttled(&self) -> u64 {
        self.shared.throttled.load(Ordering::Relaxed)
    }
    /// Upload sessions neither finished nor cancelled.
    pub fn open_sessions(&self) -> usize {
        self.shared.store.lock().expect("lock").sessions.len()
    }
    /// The bytes of the file at `path` (case-insensitive, as OneDrive), if there is one.
    pub fn file(&self, path: &str) -> Option<Bytes> {
        self.shared.store.lock().expect("lock").files.get(&path.to_lowercase()).map(|i| i.data.clone())
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, json!({ "error": { "code": code, "message": message } }))
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, m, d) = crate::dropbox::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn item_json(base: &str, item: &Item) -> Value {
    let (parent, name) = item.display.rsplit_once('/').unwrap_or(("", &item.display));
    json!({
        "id": item.id,
        "name": name,
        "eTag": item.etag,
        "cTag": item.etag,
        "size": item.data.len(),
        "createdDateTime": rfc3339(item.modified),
        "lastModifiedDateTime": rfc3339(item.modified),
        "file": { "mimeType": "application/octet-stream" },
        "parentReference": { "driveId": "fakedrive", "path": format!("/drive/root:{parent}") },
        "@microsoft.graph.downloadUrl": format!("{base}/download/{}", item.id),
    })
}

fn folder_json(path: &str) -> Value {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    json!({
        "id": format!("folder{}", path.len()),
        "name": name,
        "folder": { "childCount": 0 },
        "parentReference": { "driveId": "fakedrive", "path": format!("/drive/root:{parent}") },
    })
}

async fn authorize(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    shared.auth.authorize(CLIENT_ID, &q)
}

async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<HashMap<String, String>>) -> Response {
    shared.token_requests.fetch_add(1, Ordering::Relaxed);
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") == "authorization_code" {
        if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
            return json_response(StatusCode::UNAUTHORIZED, json!({ "error": "invalid_client" }));
        }
        let scope = match shared.auth.exchange(&form) {
            Ok(scope) => scope,
            Err(crate::authcode::ExchangeError(status, body)) => return json_response(status, body),
        };
        let n = shared.counter.fetch_add(1, Ordering::Relaxed);
        let access = format!("fake-graph-access-{n}");
        let refresh = format!("fake-onedrive-refresh-{n}");
        let mut s = shared.store.lock().expect("lock");
        s.valid_tokens.insert(access.clone());
        s.refresh_tokens.insert(refresh.clone());
        return json_response(
            StatusCode::OK,
            json!({ "token_type": "Bearer", "scope": scope, "expires_in": 3600,
                    "access_token": access, "refresh_token": refresh }),
        );
    }
    if get("grant_type") != "refresh_token" {
        return json_response(StatusCode::BAD_REQUEST, json!({ "error": "unsupported_grant_type" }));
    }
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return json_response(StatusCode::UNAUTHORIZED, json!({ "error": "invalid_client" }));
    }
    let mut s = shared.store.lock().expect("lock");
    if s.revoked || !s.refresh_tokens.contains(get("refresh_token")) {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_grant", "error_description": "AADSTS70000: the refresh token is invalid or revoked" }),
        );
    }
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let access = format!("fake-graph-access-{n}");
    let refresh = format!("fake-onedrive-refresh-{n}");
    s.valid_tokens.insert(access.clone());
    s.refresh_tokens.insert(refresh.clone());
    json_response(
        StatusCode::OK,
        json!({ "token_type": "Bearer", "scope": get("scope"), "expires_in": 3600,
                "access_token": access, "refresh_token": refresh }),
    )
}

type R = Result<Response, Response>;

/// The drive resource with its `quota` facet.
fn drive(s: &Store) -> Value {
    let mut v = json!({ "id": "fakedrive", "driveType": "personal" });
    if let Some(total) = s.quota_total {
        let used = s.used_elsewhere + s.files.values().map(|f| f.data.len() as u64).sum::<u64>();
        let remaining = total.saturating_sub(used);
        let state = if used > total {
            "exceeded"
        } else if remaining * 100 < total {
            "critical"
        } else if remaining * 10 < total {
            "nearing"
        } else {
            "normal"
        };
        v["quota"] = json!({ "total": total, "used": used, "remaining": remaining, "deleted": 0, "state": state });
    }
    v
}

async fn graph(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw = uri.path().to_owned();
    // Pre-authenticated URLs: no bearer token wanted.
    if let Some(id) = raw.strip_prefix("/upload/") {
        if headers.contains_key("authorization") {
            return graph_error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "do not send an Authorization header to uploadUrl",
            );
        }
        return session_put(&shared, &method, id, &headers, body).unwrap_or_else(|r| r);
    }
    if let Some(id) = raw.strip_prefix("/download/") {
        return download(&shared, id, &headers).unwrap_or_else(|r| r);
    }
    let Some(bearer) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
    else {
        return graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Access token is empty.");
    };
    {
        let mut s = shared.store.lock().expect("lock");
        if !s.valid_tokens.contains(&bearer) {
            let msg = if s.expired_tokens.contains(&bearer) {
                "Access token has expired or is not yet valid."
            } else {
                "IDX14100: JWT is not well formed."
            };
            return graph_error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", msg);
        }
        if !s.throttle.is_empty() {
            let (status, secs) = s.throttle.remove(0);
            shared.throttled.fetch_add(1, Ordering::Relaxed);
            let (code, st) = if status == 503 {
                ("serviceNotAvailable", StatusCode::SERVICE_UNAVAILABLE)
            } else {
                ("activityLimitReached", StatusCode::TOO_MANY_REQUESTS)
            };
            let mut resp = graph_error(st, code, "The request has been throttled");
            resp.headers_mut().insert("retry-after", HeaderValue::from(secs));
            return resp;
        }
    }
    let Some(rest) = raw.strip_prefix("/v1.0/me/drive") else {
        return graph_error(StatusCode::BAD_REQUEST, "invalidRequest", "unknown resource");
    };
    let base = shared.base.lock().expect("lock").clone();
    let query = uri.query().unwrap_or("");
    let result: R = if rest.is_empty() {
        Ok(json_response(StatusCode::OK, drive(&shared.store.lock().expect("lock"))))
    } else if rest == "/root/children" {
        children(&shared, &base, "", query)
    } else if let Some(addr) = rest.strip_prefix("/root:") {
        let (path_enc, action) = match addr.rsplit_once(":/") {
            Some((p, a)) => (p, Some(a)),
            None => (addr.trim_end_matches(':'), None),
        };
        let Some(path) = percent_decode(path_enc) else {
            return graph_error(StatusCode::BAD_REQUEST, "invalidRequest", "bad percent-encoding");
        };
        if !path.starts_with('/') || path.ends_with('/') || path.contains("//") {
            return graph_error(StatusCode::BAD_REQUEST, "invalidRequest", "invalid path");
        }
        match (method.as_str(), action) {
            ("GET", None) => stat(&shared, &base, &path),
            ("DELETE", None) => delete(&shared, &path, &headers),
            ("PUT", Some("content")) => simple_upload(&shared, &base, &path, query, body),
            ("GET", Some("content")) => content_redirect(&shared, &base, &path),
            ("POST", Some("createUploadSession")) => create_session(&shared, &base, &path, &body),
            ("GET", Some("children")) => children(&shared, &base, &path, query),
            _ => Err(graph_error(StatusCode::BAD_REQUEST, "invalidRequest", "unsupported method or action")),
        }
    } else {
        Err(graph_error(StatusCode::BAD_REQUEST, "invalidRequest", "unknown resource"))
    };
    result.unwrap_or_else(|r| r)
}

fn not_found() -> Response {
    graph_error(StatusCode::NOT_FOUND, "itemNotFound", "The resource could not be found.")
}

fn stat(shared: &Shared, base: &str, path: &str) -> R {
    let s = shared.store.lock().expect("lock");
    let lower = path.to_lowercase();
    if let Some(item) = s.files.get(&lower) {
        return Ok(json_response(StatusCode::OK, item_json(base, item)));
    }
    if s.folders.contains(&lower) {
        return Ok(json_response(StatusCode::OK, folder_json(&lower)));
    }
    Err(not_found())
}

fn delete(shared: &Shared, path: &str, headers: &HeaderMap) -> R {
    let mut s = shared.store.lock().expect("lock");
    let lower = path.to_lowercase();
    if let Some(item) = s.files.get(&lower) {
        if let Some(want) = headers.get("if-match").and_then(|v| v.to_str().ok()) {
            if want != item.etag {
                return Err(graph_error(StatusCode::PRECONDITION_FAILED, "preconditionFailed", "eTag mismatch"));
            }
        }
        s.files.remove(&lower);
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if s.folders.remove(&lower) {
        let inside = format!("{lower}/");
        s.files.retain(|k, _| !k.starts_with(&inside));
        s.folders.retain(|k| !k.starts_with(&inside));
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Err(not_found())
}

fn conflict_behavior_from_query(query: &str) -> String {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("@microsoft.graph.conflictBehavior="))
        .unwrap_or("replace")
        .to_owned()
}

/// Store bytes at `path` honouring the conflict behaviour.
fn commit(shared: &Shared, s: &mut Store, base: &str, path: &str, behavior: &str, data: Bytes) -> R {
    let lower = path.to_lowercase();
    if s.folders.contains(&lower) || (s.files.contains_key(&lower) && behavior == "fail") {
        return Err(graph_error(StatusCode::CONFLICT, "nameAlreadyExists", "The specified item name already exists."));
    }
    let mut parent = lower.as_str();
    let mut parents = Vec::new();
    while let Some((p, _)) = parent.rsplit_once('/') {
        if p.is_empty() {
            break;
        }
        if s.files.contains_key(p) {
            return Err(graph_error(StatusCode::CONFLICT, "nameAlreadyExists", "a file is in the way"));
        }
        parents.push(p.to_owned());
        parent = p;
    }
    s.folders.extend(parents);
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let item = Item {
        display: path.to_owned(),
        id: format!("FAKEITEM{n}"),
        etag: format!("\"{{FAKE-{n}}},1\""),
        data,
        modified: SystemTime::now(),
    };
    let body = item_json(base, &item);
    s.files.insert(lower, item);
    Ok(json_response(StatusCode::CREATED, body))
}

fn simple_upload(shared: &Shared, base: &str, path: &str, query: &str, body: Bytes) -> R {
    if body.len() > 250 * 1024 * 1024 {
        return Err(graph_error(StatusCode::PAYLOAD_TOO_LARGE, "invalidRequest", "use an upload session"));
    }
    let behavior = conflict_behavior_from_query(query);
    let mut s = shared.store.lock().expect("lock");
    commit(shared, &mut s, base, path, &behavior, body)
}

fn create_session(shared: &Shared, base: &str, path: &str, body: &Bytes) -> R {
    let arg: Value = if body.is_empty() { Value::Null } else { serde_json::from_slice(body).unwrap_or(Value::Null) };
    let behavior = arg["item"]["@microsoft.graph.conflictBehavior"].as_str().unwrap_or("rename");
    let mut s = shared.store.lock().expect("lock");
    if behavior == "fail" && s.files.contains_key(&path.to_lowercase()) {
        return Err(graph_error(StatusCode::CONFLICT, "nameAlreadyExists", "The specified item name already exists."));
    }
    let id = format!("sess{}", shared.counter.fetch_add(1, Ordering::Relaxed));
    // The behaviour is checked again at commit; keep it in the path slot.
    s.sessions.insert(id.clone(), Session { path: format!("{behavior}|{path}"), total: u64::MAX, data: Vec::new() });
    Ok(json_response(
        StatusCode::OK,
        json!({ "uploadUrl": format!("{base}/upload/{id}"), "expirationDateTime": rfc3339(SystemTime::now()),
                "nextExpectedRanges": ["0-"] }),
    ))
}

fn parse_content_range(headers: &HeaderMap) -> Option<(u64, u64, u64)> {
    let v = headers.get("content-range")?.to_str().ok()?;
    let spec = v.trim().strip_prefix("bytes ")?;
    let (range, total) = spec.split_once('/')?;
    let (s, e) = range.split_once('-')?;
    Some((s.parse().ok()?, e.parse().ok()?, total.parse().ok()?))
}

fn session_put(shared: &Shared, method: &Method, id: &str, headers: &HeaderMap, body: Bytes) -> R {
    let mut s = shared.store.lock().expect("lock");
    if method == Method::DELETE {
        s.sessions.remove(id);
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if method != Method::PUT {
        return Err(graph_error(StatusCode::METHOD_NOT_ALLOWED, "invalidRequest", "PUT or DELETE"));
    }
    let Some((start, end, total)) = parse_content_range(headers) else {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "Content-Range bytes s-e/total is required",
        ));
    };
    let Some(session) = s.sessions.get_mut(id) else {
        return Err(graph_error(StatusCode::NOT_FOUND, "itemNotFound", "upload session not found or expired"));
    };
    let len = body.len() as u64;
    if end < start || end - start + 1 != len {
        return Err(graph_error(StatusCode::BAD_REQUEST, "invalidRange", "Content-Range does not match the body"));
    }
    if session.total != u64::MAX && session.total != total {
        return Err(graph_error(StatusCode::BAD_REQUEST, "invalidRange", "total size changed between fragments"));
    }
    let received = session.data.len() as u64;
    if start < received {
        return Err(graph_error(StatusCode::RANGE_NOT_SATISFIABLE, "invalidRange", "fragment already received"));
    }
    if start > received {
        return Err(graph_error(StatusCode::BAD_REQUEST, "invalidRange", "fragments must be uploaded in order"));
    }
    let last = end + 1 == total;
    if body.len() > MAX_FRAGMENT || (!last && !body.len().is_multiple_of(FRAGMENT_UNIT)) {
        return Err(graph_error(
            StatusCode::BAD_REQUEST,
            "invalidRange",
            "fragments must be a multiple of 320 KiB (except the last) and at most 60 MiB",
        ));
    }
    session.total = total;
    session.data.extend_from_slice(&body);
    shared.fragments.fetch_add(1, Ordering::Relaxed);
    shared.received.fetch_add(body.len() as u64, Ordering::Relaxed);
    if !last {
        let next = session.data.len();
        return Ok(json_response(
            StatusCode::ACCEPTED,
            json!({ "expirationDateTime": rfc3339(SystemTime::now()), "nextExpectedRanges": [format!("{next}-")] }),
        ));
    }
    let session = s.sessions.remove(id).expect("present");
    let (behavior, path) = session.path.split_once('|').expect("behavior|path");
    let base = shared.base.lock().expect("lock").clone();
    commit(shared, &mut s, &base, path, behavior, Bytes::from(session.data))
}

fn content_redirect(shared: &Shared, base: &str, path: &str) -> R {
    let s = shared.store.lock().expect("lock");
    let Some(item) = s.files.get(&path.to_lowercase()) else { return Err(not_found()) };
    let mut resp = StatusCode::FOUND.into_response();
    resp.headers_mut()
        .insert("location", HeaderValue::from_str(&format!("{base}/download/{}", item.id)).expect("ascii"));
    Ok(resp)
}

fn download(shared: &Shared, id: &str, headers: &HeaderMap) -> R {
    let data = {
        let s = shared.store.lock().expect("lock");
        s.files.values().find(|i| i.id == id).map(|i| i.data.clone())
    };
    let Some(data) = data else { return Err(not_found()) };
    let size = data.len() as u64;
    let range = headers.get("range").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("bytes="));
    let Some(spec) = range else {
        return Ok((StatusCode::OK, Body::from(data)).into_response());
    };
    let span = spec.split_once('-').and_then(|(a, b)| match (a.trim(), b.trim()) {
        ("", n) => n.parse::<u64>().ok().filter(|&n| n > 0 && size > 0).map(|n| (size.saturating_sub(n), size - 1)),
        (s, "") => s.parse::<u64>().ok().map(|s| (s, size.saturating_sub(1))),
        (s, e) => Some((s.parse().ok()?, e.parse::<u64>().ok()?.min(size.saturating_sub(1)))),
    });
    match span {
        Some((s, e)) if s < size && s <= e => {
            let mut resp =
                (StatusCode::PARTIAL_CONTENT, Body::from(data.slice(s as usize..=e as usize))).into_response();
            resp.headers_mut()
                .insert("content-range", HeaderValue::from_str(&format!("bytes {s}-{e}/{size}")).expect("ascii"));
            Ok(resp)
        }
        _ => {
            let mut resp = (StatusCode::RANGE_NOT_SATISFIABLE, "").into_response();
            resp.headers_mut()
                .insert("content-range", HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"));
            Err(resp)
        }
    }
}

fn children(shared: &Shared, base: &str, path: &str, query: &str) -> R {
    let mut top = 200usize;
    let mut skip: Option<String> = None;
    for kv in query.split('&') {
        if let Some(v) = kv.strip_prefix("$top=").or_else(|| kv.strip_prefix("%24top=")) {
            top = v.parse().map_err(|_| graph_error(StatusCode::BAD_REQUEST, "invalidRequest", "bad $top"))?;
        }
        if let Some(v) = kv.strip_prefix("$skiptoken=").or_else(|| kv.strip_prefix("%24skiptoken=")) {
            skip = percent_decode(v);
        }
    }
    let top = top.clamp(1, 1000);
    let s = shared.store.lock().expect("lock");
    let lower = path.to_lowercase();
    if !lower.is_empty() && !s.folders.contains(&lower) {
        return Err(not_found());
    }
    let inside = format!("{lower}/");
    let direct = |k: &str| k.starts_with(&inside) && !k[inside.len()..].contains('/');
    let mut entries: Vec<(String, Value)> = s
        .files
        .iter()
        .filter(|(k, _)| direct(k))
        .map(|(k, i)| (k.clone(), item_json(base, i)))
        .chain(s.folders.iter().filter(|k| direct(k)).map(|k| (k.clone(), folder_json(k))))
        .filter(|(k, _)| skip.as_deref().is_none_or(|after| k.as_str() > after))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let more = entries.len() > top;
    entries.truncate(top);
    let mut body = json!({ "value": entries.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>() });
    if more {
        let last = entries.last().map(|(k, _)| k.clone()).unwrap_or_default();
        let enc: String = last.bytes().map(|b| format!("%{b:02X}")).collect();
        let resource = if path.is_empty() {
            "/root/children".to_owned()
        } else {
            format!("/root:{}:/children", encode_path(path))
        };
        body["@odata.nextLink"] = json!(format!("{base}/v1.0/me/drive{resource}?$top={top}&$skiptoken={enc}"));
    }
    Ok(json_response(StatusCode::OK, body))
}

fn encode_path(path: &str) -> String {
    path.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
