//! A fake of the Box API 2.0 (module `boxapi`: `box` is a Rust keyword),
//! from the public reference at <https://developer.box.com/reference/>:
//!
//! - "Authorize user" (`GET /api/oauth2/authorize`, on account.box.com in
//!   production) and `grant_type=authorization_code` (see [`crate::authcode`]).
//! - "Request access token" (`POST /oauth2/token`): `grant_type=refresh_token`
//!   (Box refresh tokens are single use: each refresh returns a new one and
//!   the old one stops working) and `grant_type=client_credentials` with
//!   `box_subject_type` (`enterprise` | `user`) and `box_subject_id`; errors
//!   are `{"error": "invalid_grant" | "invalid_client", ...}`.
//! - Folders: `GET /folders/{id}`, `GET /folders/{id}/items` (marker paging
//!   with `usemarker=true` + `marker` + `limit`, or `offset` + `limit`),
//!   `POST /folders` (409 `item_name_in_use` with `context_info.conflicts`).
//! - "Preflight check" (`OPTIONS /files/content`): 200 when the name is
//!   free, 409 naming the conflicting item otherwise.
//! - "Upload file" (`POST upload.box.com/api/2.0/files/content`): multipart
//!   form, `attributes` part first then the file part; optional
//!   `Content-MD5` header holding the file's SHA-1 (hex); 201 with a files
//!   collection; 409 `item_name_in_use` (never overwrites).
//! - Chunked uploads: `POST /files/upload_sessions` (`folder_id`,
//!   `file_size`, `file_name`; refused under the minimum size; answers the
//!   `part_size`), `PUT /files/upload_sessions/{id}` (`Content-Range` aligned
//!   on the part size, every part but the last exactly one part long, no
//!   overlap; `Digest: sha=<base64 SHA-1>` checked: 400 `digest_mismatch`),
//!   `POST .../commit` (the parts list and the whole file's `Digest`; 201 or
//!   202 + `Retry-After` while "processing"), `DELETE` (abort, 204).
//! - "Download file" (`GET /files/{id}/content`): 302 to a download URL that
//!   needs no token and honours `Range` (206, or 416 past the end).
//! - `GET /files/{id}`, `DELETE /files/{id}` (204, 404 when gone).
//! - "Get current user" (`GET /users/me`, <https://developer.box.com/reference/get-users-me/>):
//!   with `fields`, the mini user (`type`, `id`, `name`) plus the fields
//!   asked for; `space_amount` (the user's total space in bytes; the fake
//!   answers what is configured, `-1` being how "Update user" spells
//!   unlimited) and `space_used` (what the fake stores plus a configurable
//!   use elsewhere).
//! - Errors: `{"type": "error", "status", "code", "message", "request_id"}`;
//!   401 with an empty body and `WWW-Authenticate` for a bad token; 429
//!   `rate_limit_exceeded` with `Retry-After`.
//!
//! SHA-1 is computed here by an implementation of FIPS 180-4 of its own, so
//! the provider's digests are checked against code it does not share.

// Handlers return `Result<Response, Response>` so `?` can answer an error
// response early; the size of an axum Response does not matter in a fake.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

/// Client id the fake's token endpoint accepts.
pub const CLIENT_ID: &str = "fake-box-client";
/// Client secret the fake accepts.
pub const CLIENT_SECRET: &str = "fake-box-secret";
/// The first refresh token the fake accepts (single use, like Box's).
pub const REFRESH_TOKEN: &str = "fake-box-refresh-0";
/// Enterprise id accepted by the client-credentials grant.
pub const ENTERPRISE_ID: &str = "424242";
/// User id accepted by the client-credentials grant (`box_subject_type=user`).
pub const USER_ID: &str = "777001";
/// Box's own minimum for upload sessions (20 MB) and its part size for
/// files under about 100 MB (8 MiB): the fake's defaults.
pub const BOX_MIN_SESSION: u64 = 20_000_000;
/// See [`BOX_MIN_SESSION`].
pub const BOX_PART_SIZE: u64 = 8 * 1024 * 1024;

#[derive(Clone)]
struct Item {
    id: String,
    name: String,
    parent: String,
    /// `None` for folders (empty in discarding mode).
    data: Option<Bytes>,
    size: u64,
    sha1: String,
    etag: u64,
    modified: SystemTime,
}

struct Part {
    id: String,
    size: u64,
    sha1: String,
    data: Bytes,
}

struct Session {
    folder_id: String,
    name: String,
    file_size: u64,
    part_size: u64,
    parts: BTreeMap<u64, Part>,
    /// Discarding mode: the whole file's running SHA-1 and the next offset.
    running: Sha1,
    next: u64,
}

struct Store {
    items: HashMap<String, Item>,
    sessions: HashMap<String, Session>,
    valid_tokens: HashSet<String>,
    expired_tokens: HashSet<String>,
    refresh_tokens: HashSet<String>,
    expire_after: Option<u64>,
    throttle: Vec<u64>,
    corrupt_parts: u64,
    pending_commits: u64,
    squat_upload: Option<Bytes>,
    squat_commit: Option<Bytes>,
    min_session: u64,
    part_size: u64,
    /// Keep sizes and digests only (memory tests with gigabyte uploads).
    discard: bool,
    /// `space_amount` of `/users/me`.
    space_amount: i64,
    /// Bytes counted in `space_used` besides what the fake stores.
    used_elsewhere: u64,
}

struct Shared {
    store: Mutex<Store>,
    counter: AtomicU64,
    token_requests: AtomicU64,
    direct_uploads: AtomicU64,
    sessions_created: AtomicU64,
    parts: AtomicU64,
    commits: AtomicU64,
    aborted: AtomicU64,
    throttled: AtomicU64,
    expired_rejections: AtomicU64,
    sessions_closed: tokio::sync::Notify,
    base: Mutex<String>,
    auth: crate::authcode::AuthCodes,
}

/// A running fake Box (API, upload, token and download endpoints on one
/// loopback port). Dropping it stops it.
pub struct FakeBox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeBox {
    /// Start the fake on 127.0.0.1 (a free port), with an empty root folder.
    pub async fn start() -> FakeBox {
        Self::start_with(false).await
    }

    /// A fake that checks every digest but keeps no file contents (reads of
    /// its files return nothing): for memory tests of gigabyte uploads,
    /// whose parts must then arrive in order.
    pub async fn start_discarding() -> FakeBox {
        Self::start_with(true).await
    }

    async fn start_with(discard: bool) -> FakeBox {
        let mut items = HashMap::new();
        items.insert(
            "0".to_owned(),
            Item {
                id: "0".into(),
                name: "All Files".into(),
                parent: String::new(),
                data: None,
                size: 0,
                sha1: String::new(),
                etag: 0,
                modified: SystemTime::now(),
            },
        );
        let store = Store {
            items,
            sessions: HashMap::new(),
            valid_tokens: HashSet::new(),
            expired_tokens: HashSet::new(),
            refresh_tokens: HashSet::from([REFRESH_TOKEN.to_owned()]),
            expire_after: None,
            throttle: Vec::new(),
            corrupt_parts: 0,
            pending_commits: 0,
            squat_upload: None,
            squat_commit: None,
            min_session: BOX_MIN_SESSION,
            part_size: BOX_PART_SIZE,
            discard,
            // A free account's 10 GB.
            space_amount: 10 * 1024 * 1024 * 1024,
            used_elsewhere: 0,
        };
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            counter: AtomicU64::new(1000),
            token_requests: AtomicU64::new(0),
            direct_uploads: AtomicU64::new(0),
            sessions_created: AtomicU64::new(0),
            parts: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            expired_rejections: AtomicU64::new(0),
            sessions_closed: tokio::sync::Notify::new(),
            base: Mutex::new(String::new()),
            auth: crate::authcode::AuthCodes::default(),
        });
        let app =
            Router::new().fallback(dispatch).layer(DefaultBodyLimit::max(256 * 1024 * 1024)).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        *shared.base.lock().expect("lock") = format!("http://{addr}");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeBox { addr, shared, task }
    }

    /// Like `https://api.box.com/2.0`.
    pub fn api_url(&self) -> String {
        format!("http://{}/2.0", self.addr)
    }
    /// Like `https://upload.box.com/api/2.0`.
    pub fn upload_url(&self) -> String {
        format!("http://{}/upload/2.0", self.addr)
    }
    /// Like `https://api.box.com/oauth2/token`.
    pub fn token_url(&self) -> String {
        format!("http://{}/oauth2/token", self.addr)
    }
    /// Like `https://account.box.com/api/oauth2/authorize` (the user has
    /// already consented: it redirects straight back with a code).
    pub fn authorize_url(&self) -> String {
        format!("http://{}/api/oauth2/authorize", self.addr)
    }
    /// Refuse (`error=access_denied`) or consent to the next authorizations.
    pub fn deny_authorization(&self, deny: bool) {
        self.shared.auth.set_deny(deny);
    }

    /// Sessions are refused under `min_size` bytes and get parts of
    /// `part_size` (Box: 20 MB and 8 MiB and up; tests use small ones).
    pub fn set_session_limits(&self, min_size: u64, part_size: u64) {
        let mut s = self.shared.store.lock().expect("lock");
        s.min_session = min_size;
        s.part_size = part_size.max(1);
    }

    /// A fresh valid access token, without the OAuth flow.
    pub fn issue_access_token(&self) -> String {
        let t = format!("fake-box-access-{}", self.shared.counter.fetch_add(1, Ordering::Relaxed));
        self.shared.store.lock().expect("lock").valid_tokens.insert(t.clone());
        t
    }

    /// Every access token issued so far expires now.
    pub fn expire_access_tokens(&self) {
        let mut s = self.shared.store.lock().expect("lock");
        let all: Vec<String> = s.valid_tokens.drain().collect();
        s.expired_tokens.extend(all);
    }

    /// Every access token issued so far expires after `calls` more
    /// authorised API calls (a token running out mid-upload).
    pub fn expire_access_tokens_after(&self, calls: u64) {
        self.shared.store.lock().expect("lock").expire_after = Some(calls);
    }

    /// Whether a refresh token would still be accepted.
    pub fn refresh_token_valid(&self, token: &str) -> bool {
        self.shared.store.lock().expect("lock").refresh_tokens.contains(token)
    }

    /// Answer the next `count` authorised calls with 429 and `Retry-After: secs`.
    pub fn inject_rate_limit(&self, count: usize, secs: u64) {
        self.shared.store.lock().expect("lock").throttle.extend(std::iter::repeat_n(secs, count));
    }

    /// Damage the next `count` uploaded parts in transit (one byte flipped
    /// before the digest check).
    pub fn corrupt_next_parts(&self, count: u64) {
        self.shared.store.lock().expect("lock").corrupt_parts = count;
    }

    /// Answer the next `count` commits 202 (parts still processing) with
    /// `Retry-After: 0`.
    pub fn delay_commits(&self, count: u64) {
        self.shared.store.lock().expect("lock").pending_commits = count;
    }

    /// Another writer creates a file of the same name, holding `data`, just
    /// before the next direct upload or session creation is handled.
    pub fn squat_next_upload(&self, data: Bytes) {
        self.shared.store.lock().expect("lock").squat_upload = Some(data);
    }

    /// The same, just before the next commit is handled.
    pub fn squat_next_commit(&self, data: Bytes) {
        self.shared.store.lock().expect("lock").squat_commit = Some(data);
    }

    /// The user's `space_amount` (`-1`: unlimited) and the bytes counted in
    /// `space_used` besides what the fake stores.
    pub fn set_space(&self, space_amount: i64, used_elsewhere: u64) {
        let mut s = self.shared.store.lock().expect("lock");
        s.space_amount = space_amount;
        s.used_elsewhere = used_elsewhere;
    }
    /// Calls to the token endpoint.
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::Relaxed)
    }
    /// Files uploaded in one request (below the session minimum).
    pub fn direct_uploads(&self) -> u64 {
        self.shared.direct_uploads.load(Ordering::Relaxed)
    }
    /// Upload sessions opened.
    pub fn sessions_created(&self) -> u64 {
        self.shared.sessions_created.load(Ordering::Relaxed)
    }
    /// Parts accepted by upload sessions.
    pub fn parts(&self) -> u64 {
        self.shared.parts.load(Ordering::Relaxed)
    }
    /// Upload sessions committed.
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }
    /// Sessions ended by `DELETE`.
    pub fn aborted_sessions(&self) -> u64 {
        self.shared.aborted.load(Ordering::Relaxed)
    }
    /// Calls answered 429.
    pub fn throttled(&self) -> u64 {
        self.shared.throttled.load(Ordering::Relaxed)
    }
    /// Calls refused because their token had expired.
    pub fn expired_rejections(&self) -> u64 {
        self.shared.expired_rejections.load(Ordering::Relaxed)
    }
    /// Upload sessions neither committed nor aborted.
    pub fn open_sessions(&self) -> usize {
        self.shared.store.lock().expect("lock").sessions.len()
    }

    /// Wait until no upload session is open (sessions are closed by commit
    /// or abort, which notify), at most `limit`. True when none is open.
    pub async fn wait_for_no_sessions(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.sessions_closed.notified();
            if self.open_sessions() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.open_sessions() == 0;
            }
        }
    }

    /// Delete the folder at `path` and everything in it, as a user would in
    /// the Box web app. False when there is no such folder.
    pub fn delete_folder(&self, path: &str) -> bool {
        let mut s = self.shared.store.lock().expect("lock");
        let mut parent = "0".to_owned();
        for seg in path.split('/') {
            match child(&s, &parent, seg) {
                Some(item) if item.data.is_none() => parent = item.id.clone(),
                _ => return false,
            }
        }
        let mut doomed = vec![parent];
        while let Some(id) = doomed.pop() {
            let kids: Vec<String> = s.items.values().filter(|i| i.parent == id).map(|i| i.id.clone()).collect();
            doomed.extend(kids);
            s.items.remove(&id);
        }
        true
    }

    /// Files (not folders) stored, anywhere.
    pub fn file_count(&self) -> usize {
        self.shared.store.lock().expect("lock").items.values().filter(|i| i.data.is_some()).count()
    }

    /// The bytes of the file at `path` (`a/b/c.bin`, from the root "0").
    pub fn file(&self, path: &str) -> Option<Bytes> {
        let s = self.shared.store.lock().expect("lock");
        let mut parent = "0".to_owned();
        let segments: Vec<&str> = path.split('/').collect();
        for (i, seg) in segments.iter().enumerate() {
            let item = child(&s, &parent, seg)?;
            if i + 1 == segments.len() {
                return item.data.clone();
            }
            parent = item.id.clone();
        }
        None
    }
}

fn child<'a>(s: &'a Store, parent: &str, name: &str) -> Option<&'a Item> {
    let lower = name.to_lowercase();
    s.items.values().find(|i| i.parent == parent && i.name.to_lowercase() == lower)
}

// ---- SHA-1 (FIPS 180-4), independent of the provider's sha1 crate ----

/// Incremental SHA-1.
#[derive(Clone)]
pub(crate) struct Sha1 {
    h: [u32; 5],
    buf: Vec<u8>,
    len: u64,
}

impl Sha1 {
    pub(crate) fn new() -> Self {
        Sha1 { h: [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0], buf: Vec::new(), len: 0 }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if !self.buf.is_empty() {
            let take = (64 - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() < 64 {
                return;
            }
            let block = std::mem::take(&mut self.buf);
            compress(&mut self.h, &block);
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            compress(&mut self.h, block);
        }
        self.buf.extend_from_slice(blocks.remainder());
    }

    pub(crate) fn finalize(mut self) -> [u8; 20] {
        let bit_len = self.len.wrapping_mul(8);
        let mut tail = std::mem::take(&mut self.buf);
        tail.push(0x80);
        while tail.len() % 64 != 56 {
            tail.push(0);
        }
        tail.extend_from_slice(&bit_len.to_be_bytes());
        for block in tail.chunks_exact(64) {
            compress(&mut self.h, block);
        }
        let mut out = [0u8; 20];
        for (i, v) in self.h.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        }
        out
    }
}

fn compress(h: &mut [u32; 5], block: &[u8]) {
    let mut w = [0u32; 80];
    for (i, word) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for i in 16..80 {
        w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *h;
    for (i, wi) in w.iter().enumerate() {
        let (f, k) = match i {
            0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
            20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6u32),
        };
        let t = a.rotate_left(5).wrapping_add(f).wrapping_add(e).wrapping_add(k).wrapping_add(*wi);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
        *x = x.wrapping_add(y);
    }
}

pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut s = Sha1::new();
    s.update(data);
    s.finalize()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- responses ----

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

fn box_error(status: StatusCode, code: &str, message: &str) -> Response {
    box_error_with(status, code, message, Value::Null)
}

fn box_error_with(status: StatusCode, code: &str, message: &str, context: Value) -> Response {
    let mut body = json!({
        "type": "error", "status": status.as_u16(), "code": code, "message": message,
        "help_url": "https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/",
        "request_id": "fakerequest",
    });
    if !context.is_null() {
        body["context_info"] = context;
    }
    json_response(status, body)
}

fn not_found() -> Response {
    box_error(StatusCode::NOT_FOUND, "not_found", "Not Found")
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, m, d) = crate::dropbox::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    // Box answers in the account's zone; the fake uses UTC offsets.
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00", rem / 3600, (rem % 3600) / 60, rem % 60)
}

fn item_json(item: &Item) -> Value {
    match &item.data {
        Some(_) => json!({
            "type": "file", "id": item.id, "etag": item.etag.to_string(), "sequence_id": item.etag.to_string(),
            "name": item.name, "size": item.size, "sha1": item.sha1,
            "created_at": rfc3339(item.modified), "modified_at": rfc3339(item.modified),
            "content_modified_at": rfc3339(item.modified),
            "parent": { "type": "folder", "id": item.parent },
        }),
        None => json!({
            "type": "folder", "id": item.id, "etag": item.etag.to_string(), "sequence_id": item.etag.to_string(),
            "name": item.name, "parent": if item.parent.is_empty() { Value::Null } else { json!({ "type": "folder", "id": item.parent }) },
        }),
    }
}

/// The mini representation Box puts in `context_info.conflicts`.
fn conflict_json(item: &Item) -> Value {
    let mut v = json!({ "type": if item.data.is_some() { "file" } else { "folder" }, "id": item.id,
                        "etag": item.etag.to_string(), "sequence_id": item.etag.to_string(), "name": item.name });
    if item.data.is_some() {
        v["sha1"] = json!(item.sha1);
    }
    v
}

fn name_in_use(item: &Item, as_list: bool) -> Response {
    let conflicts = if as_list { json!([conflict_json(item)]) } else { conflict_json(item) };
    box_error_with(
        StatusCode::CONFLICT,
        "item_name_in_use",
        "Item with the same name already exists",
        json!({ "conflicts": conflicts }),
    )
}

fn check_name(name: &str) -> Result<(), Response> {
    let bad = name.is_empty()
        || name.len() > 255
        || name.contains('/')
        || name.contains('\\')
        || name == "."
        || name == ".."
        || name != name.trim();
    if bad {
        return Err(box_error(StatusCode::BAD_REQUEST, "item_name_invalid", "Item name invalid"));
    }
    Ok(())
}

type R = Result<Response, Response>;

// ---- dispatch ----

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let discard = shared.store.lock().expect("lock").discard;
    if discard && method == Method::PUT {
        if let Some(id) = path.strip_prefix("/upload/2.0/files/upload_sessions/") {
            if let Err(r) = authorise(&shared, &headers) {
                return r;
            }
            return upload_part_streaming(&shared, id, &headers, body).await.unwrap_or_else(|r| r);
        }
    }
    let Ok(body) = axum::body::to_bytes(body, 256 * 1024 * 1024).await else {
        return box_error(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", "body too large or cut short");
    };
    if path == "/oauth2/token" && method == Method::POST {
        return token(&shared, &body);
    }
    if path == "/api/oauth2/authorize" && method == Method::GET {
        let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        return shared.auth.authorize(CLIENT_ID, &q);
    }
    if let Some(id) = path.strip_prefix("/dl/") {
        return download(&shared, id, &headers).unwrap_or_else(|r| r);
    }
    if let Err(r) = authorise(&shared, &headers) {
        return r;
    }
    let result = if let Some(rest) = path.strip_prefix("/2.0") {
        api(&shared, &method, rest, &query, &headers, &body)
    } else if let Some(rest) = path.strip_prefix("/upload/2.0") {
        upload(&shared, &method, rest, &headers, body)
    } else {
        Err(not_found())
    };
    result.unwrap_or_else(|r| r)
}

fn authorise(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let mut s = shared.store.lock().expect("lock");
    if let Some(n) = s.expire_after {
        if n == 0 {
            let all: Vec<String> = s.valid_tokens.drain().collect();
            s.expired_tokens.extend(all);
            s.expire_after = None;
        } else {
            s.expire_after = Some(n - 1);
        }
    }
    if !s.valid_tokens.contains(&bearer) {
        if s.expired_tokens.contains(&bearer) {
            shared.expired_rejections.fetch_add(1, Ordering::Relaxed);
        }
        let mut resp = StatusCode::UNAUTHORIZED.into_response();
        resp.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static(
                "Bearer realm=\"Service\", error=\"invalid_token\", error_description=\"The access token provided is invalid.\"",
            ),
        );
        return Err(resp);
    }
    if !s.throttle.is_empty() {
        let secs = s.throttle.remove(0);
        shared.throttled.fetch_add(1, Ordering::Relaxed);
        let mut resp = box_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "Request rate limit exceeded, please try again later",
        );
        resp.headers_mut().insert("retry-after", HeaderValue::from(secs));
        return Err(resp);
    }
    Ok(())
}

fn form_value<'a>(form: &'a [(String, String)], key: &str) -> &'a str {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
}

fn token(shared: &Shared, body: &Bytes) -> Response {
    shared.token_requests.fetch_add(1, Ordering::Relaxed);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form_value(&form, k);
    let grant_error = |desc: &str| {
        json_response(StatusCode::BAD_REQUEST, json!({ "error": "invalid_grant", "error_description": desc }))
    };
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_client", "error_description": "The client credentials are invalid" }),
        );
    }
    let mut s = shared.store.lock().expect("lock");
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let access = format!("fake-box-access-{n}");
    match get("grant_type") {
        "authorization_code" => {
            let map: HashMap<String, String> = form.iter().cloned().collect();
            if let Err(crate::authcode::ExchangeError(status, body)) = shared.auth.exchange(&map) {
                return json_response(status, body);
            }
            let refresh = format!("fake-box-refresh-{n}");
            s.refresh_tokens.insert(refresh.clone());
            s.valid_tokens.insert(access.clone());
            json_response(
                StatusCode::OK,
                json!({ "access_token": access, "expires_in": 3600, "restricted_to": [],
                        "refresh_token": refresh, "token_type": "bearer" }),
            )
        }
        "refresh_token" => {
            // Single use: the presented token is spent whatever happens next.
            if !s.refresh_tokens.remove(get("refresh_token")) {
                return grant_error("Invalid refresh token");
            }
            let refresh = format!("fake-box-refresh-{n}");
            s.refresh_tokens.insert(refresh.clone());
            s.valid_tokens.insert(access.clone());
            json_response(
                StatusCode::OK,
                json!({ "access_token": access, "expires_in": 3600, "restricted_to": [],
                        "refresh_token": refresh, "token_type": "bearer" }),
            )
        }
        "client_credentials" => {
            let ok = match get("box_subject_type") {
                "enterprise" => get("box_subject_id") == ENTERPRISE_ID,
                "user" => get("box_subject_id") == USER_ID,
                _ => false,
            };
            if !ok {
                return grant_error("Grant credentials are invalid");
            }
            s.valid_tokens.insert(access.clone());
            json_response(
                StatusCode::OK,
                json!({ "access_token": access, "expires_in": 3600, "restricted_to": [], "token_type": "bearer" }),
            )
        }
        _ => json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": "unsupported_grant_type", "error_description": "Grant type is not supported" }),
        ),
    }
}

/// `GET /users/me`: the mini user, plus the space fields when asked for.
fn current_user(shared: &Shared, query: &str) -> Value {
    let s = shared.store.lock().expect("lock");
    let mut v = json!({ "type": "user", "id": USER_ID, "name": "Fake User" });
    let fields = query_value(query, "fields");
    let wants = |f: &str| fields.as_deref().is_none_or(|all| all.split(',').any(|x| x == f));
    if wants("space_amount") {
        v["space_amount"] = json!(s.space_amount);
    }
    if wants("space_used") {
        let stored: u64 = s.items.values().filter(|i| i.data.is_some()).map(|i| i.size).sum();
        v["space_used"] = json!(stored + s.used_elsewhere);
    }
    v
}

fn query_value(query: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

fn api(shared: &Shared, method: &Method, rest: &str, query: &str, headers: &HeaderMap, body: &Bytes) -> R {
    let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["folders", id]) => {
            let s = shared.store.lock().expect("lock");
            match s.items.get(*id) {
                Some(i) if i.data.is_none() => Ok(json_response(StatusCode::OK, item_json(i))),
                _ => Err(not_found()),
            }
        }
        ("GET", ["folders", id, "items"]) => folder_items(shared, id, query),
        ("GET", ["users", "me"]) => Ok(json_response(StatusCode::OK, current_user(shared, query))),
        ("POST", ["folders"]) => create_folder(shared, body),
        ("OPTIONS", ["files", "content"]) => preflight(shared, body),
        ("GET", ["files", id]) => {
            let s = shared.store.lock().expect("lock");
            match s.items.get(*id) {
                Some(i) if i.data.is_some() => Ok(json_response(StatusCode::OK, item_json(i))),
                _ => Err(not_found()),
            }
        }
        ("DELETE", ["files", id]) => {
            let mut s = shared.store.lock().expect("lock");
            let Some(item) = s.items.get(*id).filter(|i| i.data.is_some()) else { return Err(not_found()) };
            if let Some(want) = headers.get("if-match").and_then(|v| v.to_str().ok()) {
                if want != item.etag.to_string() {
                    return Err(box_error(StatusCode::PRECONDITION_FAILED, "precondition_failed", "etag mismatch"));
                }
            }
            s.items.remove(*id);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("GET", ["files", id, "content"]) => {
            let s = shared.store.lock().expect("lock");
            if s.items.get(*id).is_none_or(|i| i.data.is_none()) {
                return Err(not_found());
            }
            let base = shared.base.lock().expect("lock").clone();
            let mut resp = StatusCode::FOUND.into_response();
            let location = format!("{base}/dl/{id}");
            resp.headers_mut().insert("location", HeaderValue::from_str(&location).expect("ascii"));
            Ok(resp)
        }
        _ => Err(box_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method Not Allowed")),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|_| box_error(StatusCode::BAD_REQUEST, "bad_request", "Invalid JSON body"))
}

fn folder_items(shared: &Shared, id: &str, query: &str) -> R {
    let s = shared.store.lock().expect("lock");
    if s.items.get(id).is_none_or(|i| i.data.is_some()) {
        return Err(not_found());
    }
    let limit: usize = query_value(query, "limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "limit must be 1..1000"));
    }
    let mut entries: Vec<&Item> = s.items.values().filter(|i| i.parent == id).collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if query_value(query, "usemarker").as_deref() == Some("true") {
        let after = match query_value(query, "marker") {
            Some(m) => {
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(m)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| box_error(StatusCode::BAD_REQUEST, "bad_request", "invalid marker"))?;
                Some(raw)
            }
            None => None,
        };
        let page: Vec<&Item> =
            entries.into_iter().filter(|i| after.as_deref().is_none_or(|a| i.name.as_str() > a)).collect();
        let more = page.len() > limit;
        let page = &page[..page.len().min(limit)];
        let next = if more {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(page.last().expect("non-empty").name.as_bytes())
        } else {
            String::new()
        };
        return Ok(json_response(
            StatusCode::OK,
            json!({ "entries": page.iter().map(|i| item_json(i)).collect::<Vec<_>>(), "limit": limit,
                    "next_marker": if more { json!(next) } else { Value::Null } }),
        ));
    }
    let offset: usize = query_value(query, "offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let total = entries.len();
    let page: Vec<Value> = entries.into_iter().skip(offset).take(limit).map(item_json).collect();
    Ok(json_response(
        StatusCode::OK,
        json!({ "entries": page, "limit": limit, "offset": offset, "total_count": total }),
    ))
}

/// `name` and `parent.id` of an attributes-style JSON body.
fn name_and_parent(v: &Value) -> Result<(String, String), Response> {
    let name = v["name"].as_str().unwrap_or("").to_owned();
    let parent = v["parent"]["id"].as_str().unwrap_or("").to_owned();
    if parent.is_empty() {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "parent.id is required"));
    }
    check_name(&name)?;
    Ok((name, parent))
}

fn parent_folder_exists(s: &Store, parent: &str) -> bool {
    s.items.get(parent).is_some_and(|i| i.data.is_none())
}

fn create_folder(shared: &Shared, body: &Bytes) -> R {
    let (name, parent) = name_and_parent(&parse_json(body)?)?;
    let mut s = shared.store.lock().expect("lock");
    if !parent_folder_exists(&s, &parent) {
        return Err(not_found());
    }
    if let Some(existing) = child(&s, &parent, &name) {
        return Err(name_in_use(existing, true));
    }
    let id = shared.counter.fetch_add(1, Ordering::Relaxed).to_string();
    let item = Item {
        id: id.clone(),
        name,
        parent,
        data: None,
        size: 0,
        sha1: String::new(),
        etag: 0,
        modified: SystemTime::now(),
    };
    let body = item_json(&item);
    s.items.insert(id, item);
    Ok(json_response(StatusCode::CREATED, body))
}

fn preflight(shared: &Shared, body: &Bytes) -> R {
    let (name, parent) = name_and_parent(&parse_json(body)?)?;
    let s = shared.store.lock().expect("lock");
    if !parent_folder_exists(&s, &parent) {
        return Err(not_found());
    }
    if let Some(existing) = child(&s, &parent, &name) {
        // The preflight check names the conflict as one object, not a list.
        return Err(name_in_use(existing, false));
    }
    let base = shared.base.lock().expect("lock").clone();
    Ok(json_response(
        StatusCode::OK,
        json!({ "upload_url": format!("{base}/upload/2.0/files/content"), "upload_token": null }),
    ))
}

/// Store a new file; never replaces anything.
fn create_file(shared: &Shared, s: &mut Store, parent: &str, name: &str, data: Bytes) -> Result<Item, Response> {
    let (size, sha) = (data.len() as u64, hex(&sha1(&data)));
    create_file_sized(shared, s, parent, name, data, size, sha)
}

/// [`create_file`] with the size and SHA-1 given (discarding mode keeps no bytes).
fn create_file_sized(
    shared: &Shared,
    s: &mut Store,
    parent: &str,
    name: &str,
    data: Bytes,
    size: u64,
    sha: String,
) -> Result<Item, Response> {
    if !parent_folder_exists(s, parent) {
        return Err(not_found());
    }
    if let Some(existing) = child(s, parent, name) {
        return Err(name_in_use(existing, true));
    }
    let id = shared.counter.fetch_add(1, Ordering::Relaxed).to_string();
    let item = Item {
        id: id.clone(),
        name: name.to_owned(),
        parent: parent.to_owned(),
        sha1: sha,
        size,
        data: Some(data),
        etag: 0,
        modified: SystemTime::now(),
    };
    s.items.insert(id, item.clone());
    Ok(item)
}

fn squat(shared: &Shared, s: &mut Store, parent: &str, name: &str, data: Option<Bytes>) {
    if let Some(data) = data {
        let _ = create_file(shared, s, parent, name, data);
    }
}

fn files_collection(item: &Item) -> Value {
    json!({ "total_count": 1, "entries": [item_json(item)] })
}

fn upload(shared: &Shared, method: &Method, rest: &str, headers: &HeaderMap, body: Bytes) -> R {
    let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["files", "content"]) => direct_upload(shared, headers, body),
        ("POST", ["files", "upload_sessions"]) => create_session(shared, &body),
        ("PUT", ["files", "upload_sessions", id]) => upload_part(shared, id, headers, body),
        ("POST", ["files", "upload_sessions", id, "commit"]) => commit(shared, id, headers, &body),
        ("DELETE", ["files", "upload_sessions", id]) => {
            let mut s = shared.store.lock().expect("lock");
            if s.sessions.remove(*id).is_none() {
                return Err(not_found());
            }
            shared.aborted.fetch_add(1, Ordering::Relaxed);
            drop(s);
            shared.sessions_closed.notify_waiters();
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(box_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method Not Allowed")),
    }
}

/// The parts of a `multipart/form-data` body: (name, content).
fn multipart(headers: &HeaderMap, body: &Bytes) -> Option<Vec<(String, Bytes)>> {
    let ct = headers.get("content-type")?.to_str().ok()?;
    let boundary = ct.split(';').find_map(|p| p.trim().strip_prefix("boundary="))?.trim_matches('"');
    let delim = format!("--{boundary}");
    let find = |from: usize, pat: &[u8]| body[from..].windows(pat.len()).position(|w| w == pat).map(|p| p + from);
    let mut out = Vec::new();
    let mut pos = find(0, delim.as_bytes())? + delim.len();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Some(out);
        }
        pos += 2; // CRLF after the delimiter
        let head_end = find(pos, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&body[pos..head_end]).ok()?;
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name="))?
            .trim_matches('"')
            .to_owned();
        let start = head_end + 4;
        let next = find(start, format!("\r\n{delim}").as_bytes())?;
        out.push((name, body.slice(start..next)));
        pos = next + 2 + delim.len();
    }
}

fn direct_upload(shared: &Shared, headers: &HeaderMap, body: Bytes) -> R {
    let parts = multipart(headers, &body)
        .ok_or_else(|| box_error(StatusCode::BAD_REQUEST, "bad_request", "a multipart/form-data body is required"))?;
    // Box reads the attributes before the file: they must come first.
    let (Some((first, attributes)), Some((second, data))) = (parts.first(), parts.get(1)) else {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "attributes and file parts are required"));
    };
    if first != "attributes" || second != "file" {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "the attributes part must precede the file"));
    }
    let (name, parent) = name_and_parent(&parse_json(attributes)?)?;
    if data.len() as u64 > 50_000_000 {
        return Err(box_error(StatusCode::PAYLOAD_TOO_LARGE, "file_size_limit_exceeded", "use a chunked upload"));
    }
    if let Some(want) = headers.get("content-md5").and_then(|v| v.to_str().ok()) {
        if !want.eq_ignore_ascii_case(&hex(&sha1(data))) {
            return Err(box_error(StatusCode::BAD_REQUEST, "digest_mismatch", "File digest was incorrect."));
        }
    }
    let mut s = shared.store.lock().expect("lock");
    let squatter = s.squat_upload.take();
    squat(shared, &mut s, &parent, &name, squatter);
    let item = create_file(shared, &mut s, &parent, &name, data.clone())?;
    shared.direct_uploads.fetch_add(1, Ordering::Relaxed);
    Ok(json_response(StatusCode::CREATED, files_collection(&item)))
}

fn create_session(shared: &Shared, body: &Bytes) -> R {
    let v = parse_json(body)?;
    let name = v["file_name"].as_str().unwrap_or("").to_owned();
    let folder = v["folder_id"].as_str().unwrap_or("").to_owned();
    let Some(size) = v["file_size"].as_u64() else {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "file_size is required"));
    };
    check_name(&name)?;
    let mut s = shared.store.lock().expect("lock");
    if size < s.min_session {
        return Err(box_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "file_size is below the minimum for chunked uploads; use a direct upload",
        ));
    }
    if !parent_folder_exists(&s, &folder) {
        return Err(not_found());
    }
    let squatter = s.squat_upload.take();
    squat(shared, &mut s, &folder, &name, squatter);
    // Creating a session runs the preflight checks.
    if let Some(existing) = child(&s, &folder, &name) {
        return Err(name_in_use(existing, true));
    }
    let id = format!("SESS{:X}", shared.counter.fetch_add(1, Ordering::Relaxed));
    let part_size = s.part_size;
    let total_parts = size.div_ceil(part_size);
    s.sessions.insert(
        id.clone(),
        Session {
            folder_id: folder,
            name,
            file_size: size,
            part_size,
            parts: BTreeMap::new(),
            running: Sha1::new(),
            next: 0,
        },
    );
    shared.sessions_created.fetch_add(1, Ordering::Relaxed);
    let base = format!("{}/upload/2.0/files/upload_sessions/{id}", shared.base.lock().expect("lock"));
    Ok(json_response(
        StatusCode::CREATED,
        json!({
            "id": id, "type": "upload_session",
            "session_expires_at": rfc3339(SystemTime::now() + std::time::Duration::from_secs(86_400)),
            "part_size": part_size, "total_parts": total_parts, "num_parts_processed": 0,
            "session_endpoints": {
                "upload_part": base, "commit": format!("{base}/commit"), "abort": base,
                "list_parts": format!("{base}/parts"), "status": base, "log_event": format!("{base}/log"),
            },
        }),
    ))
}

fn parse_content_range(headers: &HeaderMap) -> Option<(u64, u64, u64)> {
    let v = headers.get("content-range")?.to_str().ok()?;
    let spec = v.trim().strip_prefix("bytes ")?;
    let (range, total) = spec.split_once('/')?;
    let (s, e) = range.split_once('-')?;
    Some((s.parse().ok()?, e.parse().ok()?, total.parse().ok()?))
}

fn digest_of(headers: &HeaderMap) -> Option<Vec<u8>> {
    let v = headers.get("digest")?.to_str().ok()?;
    let b64 = v.trim().strip_prefix("sha=").or_else(|| v.trim().strip_prefix("SHA="))?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok().filter(|d| d.len() == 20)
}

fn range_error(message: &str) -> Response {
    box_error(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable", message)
}

/// Validate a part's `Content-Range` against its session.
fn check_part_range(session: &Session, start: u64, end: u64, total: u64, len: u64) -> Result<(), Response> {
    if end < start || end - start + 1 != len {
        return Err(range_error("Content-Range does not match the body length"));
    }
    if total != session.file_size || end >= total {
        return Err(range_error("Content-Range total differs from the session's file_size"));
    }
    if !start.is_multiple_of(session.part_size) {
        return Err(range_error("parts must start at a multiple of the part size"));
    }
    if len != session.part_size && end + 1 != total {
        return Err(range_error("every part but the last must be exactly part_size bytes"));
    }
    if session.parts.contains_key(&start) {
        return Err(range_error("this range overlaps a part already uploaded"));
    }
    Ok(())
}

/// Discarding mode: a part is hashed as it streams in and never held, so
/// the fake adds almost nothing to a memory test's peak. Parts must come
/// in order (the whole file's SHA-1 is computed on the way).
async fn upload_part_streaming(shared: &Shared, id: &str, headers: &HeaderMap, mut body: Body) -> R {
    use axum::body::HttpBody as _;
    let Some(want) = digest_of(headers) else {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "Digest: sha=<base64 SHA-1> is required"));
    };
    let Some((start, end, total)) = parse_content_range(headers) else {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "Content-Range: bytes s-e/total is required"));
    };
    let declared = (end + 1).saturating_sub(start);
    let (mut whole, mut corrupt) = {
        let mut s = shared.store.lock().expect("lock");
        let corrupt = s.corrupt_parts > 0;
        s.corrupt_parts = s.corrupt_parts.saturating_sub(1);
        let Some(session) = s.sessions.get(id) else { return Err(not_found()) };
        check_part_range(session, start, end, total, declared)?;
        if start != session.next {
            return Err(range_error("the discarding fake takes parts in order only"));
        }
        (session.running.clone(), corrupt)
    };
    let mut part = Sha1::new();
    let mut len = 0u64;
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(frame) = frame else {
            return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "the part was cut short"));
        };
        let Ok(data) = frame.into_data() else { continue };
        let data = if corrupt && !data.is_empty() {
            corrupt = false;
            let mut v = data.to_vec();
            v[0] ^= 0xff;
            Bytes::from(v)
        } else {
            data
        };
        part.update(&data);
        whole.update(&data);
        len += data.len() as u64;
    }
    if len != declared {
        return Err(range_error("Content-Range does not match the body length"));
    }
    let got = part.finalize();
    if got.as_slice() != want.as_slice() {
        return Err(box_error(StatusCode::BAD_REQUEST, "digest_mismatch", "File digest was incorrect."));
    }
    let mut s = shared.store.lock().expect("lock");
    let Some(session) = s.sessions.get_mut(id) else { return Err(not_found()) };
    if session.next != start {
        return Err(range_error("the discarding fake takes parts in order only"));
    }
    session.running = whole;
    session.next += len;
    let part_id = format!("{:08X}", shared.counter.fetch_add(1, Ordering::Relaxed));
    let sha = hex(&got);
    session.parts.insert(start, Part { id: part_id.clone(), size: len, sha1: sha.clone(), data: Bytes::new() });
    shared.parts.fetch_add(1, Ordering::Relaxed);
    Ok(json_response(
        StatusCode::OK,
        json!({ "part": { "part_id": part_id, "offset": start, "size": len, "sha1": sha } }),
    ))
}

fn upload_part(shared: &Shared, id: &str, headers: &HeaderMap, body: Bytes) -> R {
    let Some(want) = digest_of(headers) else {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "Digest: sha=<base64 SHA-1> is required"));
    };
    let Some((start, end, total)) = parse_content_range(headers) else {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "Content-Range: bytes s-e/total is required"));
    };
    let mut s = shared.store.lock().expect("lock");
    let corrupt = if s.corrupt_parts > 0 {
        s.corrupt_parts -= 1;
        true
    } else {
        false
    };
    let Some(session) = s.sessions.get_mut(id) else { return Err(not_found()) };
    check_part_range(session, start, end, total, body.len() as u64)?;
    let len = body.len() as u64;
    let received = if corrupt {
        let mut v = body.to_vec();
        if let Some(b) = v.first_mut() {
            *b ^= 0xff;
        }
        Bytes::from(v)
    } else {
        body
    };
    let got = sha1(&received);
    if got.as_slice() != want.as_slice() {
        return Err(box_error(StatusCode::BAD_REQUEST, "digest_mismatch", "File digest was incorrect."));
    }
    let part_id = format!("{:08X}", shared.counter.fetch_add(1, Ordering::Relaxed));
    let sha = hex(&got);
    session.parts.insert(start, Part { id: part_id.clone(), size: len, sha1: sha.clone(), data: received });
    shared.parts.fetch_add(1, Ordering::Relaxed);
    Ok(json_response(
        StatusCode::OK,
        json!({ "part": { "part_id": part_id, "offset": start, "size": len, "sha1": sha } }),
    ))
}

fn commit(shared: &Shared, id: &str, headers: &HeaderMap, body: &Bytes) -> R {
    let Some(want) = digest_of(headers) else {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "Digest: sha=<base64 SHA-1> is required"));
    };
    let listed = parse_json(body)?;
    let mut s = shared.store.lock().expect("lock");
    if !s.sessions.contains_key(id) {
        return Err(not_found());
    }
    if s.pending_commits > 0 {
        s.pending_commits -= 1;
        let mut resp = StatusCode::ACCEPTED.into_response();
        resp.headers_mut().insert("retry-after", HeaderValue::from_static("0"));
        return Ok(resp);
    }
    let session = s.sessions.get(id).expect("checked");
    // The list must name exactly the uploaded parts, covering the file.
    let parts_json: Vec<Value> = listed["parts"].as_array().cloned().unwrap_or_default();
    let listed: Vec<(String, u64, u64)> = parts_json
        .iter()
        .map(|p| {
            (
                p["part_id"].as_str().unwrap_or("").to_owned(),
                p["offset"].as_u64().unwrap_or(0),
                p["size"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let uploaded: Vec<(String, u64, u64)> = session.parts.iter().map(|(off, p)| (p.id.clone(), *off, p.size)).collect();
    // A part's `sha1`, when listed, must be the one Box recorded for it.
    let sha_ok = parts_json.iter().all(|p| match (p["sha1"].as_str(), p["offset"].as_u64()) {
        (Some(sha), Some(off)) => session.parts.get(&off).is_some_and(|part| part.sha1.eq_ignore_ascii_case(sha)),
        _ => true,
    });
    if !sha_ok {
        return Err(box_error(StatusCode::BAD_REQUEST, "bad_request", "a listed part's sha1 differs from the upload"));
    }
    let mut sorted = listed.clone();
    sorted.sort_by_key(|p| p.1);
    let covered: u64 = uploaded.iter().map(|p| p.2).sum();
    if sorted != uploaded || covered != session.file_size {
        return Err(box_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the parts list does not match the parts uploaded, or parts are missing",
        ));
    }
    let (data, whole) = if s.discard {
        (Vec::new(), session.running.clone().finalize())
    } else {
        let mut data = Vec::with_capacity(session.file_size as usize);
        for p in session.parts.values() {
            data.extend_from_slice(&p.data);
        }
        let whole = sha1(&data);
        (data, whole)
    };
    if whole.as_slice() != want.as_slice() {
        return Err(box_error(StatusCode::BAD_REQUEST, "digest_mismatch", "File digest was incorrect."));
    }
    let file_size = session.file_size;
    let (folder, name) = (session.folder_id.clone(), session.name.clone());
    let squatter = s.squat_commit.take();
    squat(shared, &mut s, &folder, &name, squatter);
    // A name taken meanwhile: 409, and the session stays until aborted.
    let item = create_file_sized(shared, &mut s, &folder, &name, Bytes::from(data), file_size, hex(&whole))?;
    s.sessions.remove(id);
    shared.commits.fetch_add(1, Ordering::Relaxed);
    drop(s);
    shared.sessions_closed.notify_waiters();
    Ok(json_response(StatusCode::CREATED, files_collection(&item)))
}

fn download(shared: &Shared, id: &str, headers: &HeaderMap) -> R {
    let data = {
        let s = shared.store.lock().expect("lock");
        s.items.get(id).and_then(|i| i.data.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_the_fips_examples() {
        assert_eq!(hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(&sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
        let mut pieces = Sha1::new();
        for piece in long.chunks(7) {
            pieces.update(piece);
        }
        assert_eq!(hex(&pieces.finalize()), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    }
}
