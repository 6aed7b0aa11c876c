//! A fake of the Dropbox HTTP API v2, from the public documentation at
//! <https://www.dropbox.com/developers/documentation/http/documentation>:
//!
//! - "Authorization" / "Errors" sections: `Authorization: Bearer`, 400 with a
//!   plain-text body for malformed calls, 401 `{"error_summary":
//!   "expired_access_token/...", "error": {".tag": "expired_access_token"}}`
//!   (or `invalid_access_token`), 409 endpoint errors as `{"error_summary",
//!   "error"}` with `.tag` unions, 429 `too_many_requests` with a
//!   `Retry-After` header and `retry_after` in the body.
//! - "Content-upload / content-download endpoints": arguments as JSON in the
//!   `Dropbox-API-Arg` header (non-ASCII characters escaped as `\uXXXX`),
//!   results of downloads in the `Dropbox-API-Result` header, `Range`
//!   requests answered with 206.
//! - /2/files/upload (UploadArg: path, mode, autorename; UploadError `path`
//!   with WriteError `conflict`), /2/files/upload_session/start,
//!   /append_v2, /finish (UploadSessionLookupError `incorrect_offset` with
//!   `correct_offset`, `not_found`, `closed`), /2/files/download,
//!   /2/files/get_metadata, /2/files/delete_v2 (DeleteError `path_lookup`
//!   `not_found`), /2/files/list_folder and /list_folder/continue (cursor,
//!   has_more, `limit`, `recursive`), /2/users/get_current_account,
//!   /2/users/get_space_usage (SpaceUsage: `used` and an `allocation` union,
//!   `individual` with `allocated`, or `team` with the team's `used` /
//!   `allocated` and the member's `user_within_team_space_allocated`, 0
//!   meaning no member limit); the fake's `used` is what it stores plus a
//!   configurable use elsewhere.
//! - OAuth guide, "/oauth2/authorize" (PKCE, `token_access_type=offline`)
//!   and "/oauth2/token" `grant_type=authorization_code` (see
//!   [`crate::authcode`]): the code answer carries a refresh token.
//! - OAuth guide, "/oauth2/token": `grant_type=refresh_token` answers
//!   `{"access_token", "token_type": "bearer", "expires_in"}`; a revoked
//!   refresh token gives 400 `{"error": "invalid_grant"}`.
//!
//! Stricter than Dropbox on one point, on purpose: every append but the last
//! must be a multiple of 4 MiB (Dropbox requires that only of concurrent
//! sessions, and recommends it for all), so a client that breaks the rule is
//! caught here.

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
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// App key the fake accepts at its token endpoint.
pub const APP_KEY: &str = "fake-app-key";
/// App secret the fake accepts.
pub const APP_SECRET: &str = "fake-app-secret";
/// Refresh token the fake accepts (until [`FakeDropbox::revoke_refresh_token`]).
pub const REFRESH_TOKEN: &str = "fake-refresh-token";
/// Lifetime the fake gives new access tokens (as Dropbox: four hours).
pub const ACCESS_TOKEN_LIFETIME_SECS: u64 = 14_400;
/// Unit of upload-session appends.
pub const CHUNK_UNIT: usize = 4 * 1024 * 1024;
/// Largest body of one upload call (Dropbox: 150 MB).
pub const MAX_UPLOAD_CALL: usize = 150 * 1024 * 1024;

#[derive(Clone)]
struct FileEntry {
    path_display: String,
    id: String,
    rev: String,
    data: Bytes,
    server_modified: SystemTime,
}

struct Session {
    data: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Store {
    /// Files by lower-cased path (Dropbox paths are case-insensitive).
    files: BTreeMap<String, FileEntry>,
    /// Folders by lower-cased path (kept when emptied, as in Dropbox).
    folders: BTreeSet<String>,
    sessions: HashMap<String, Session>,
    valid_tokens: HashSet<String>,
    expired_tokens: HashSet<String>,
    refresh_revoked: bool,
    /// Expire every access token after this many more authorised calls.
    expire_after: Option<u64>,
    /// Answer this many next calls with 429.
    rate_limit: u64,
    rate_limit_secs: u64,
    space: Space,
}

/// What users/get_space_usage answers.
#[derive(Default)]
struct Space {
    /// Individual allocation, or the team's when `team` is set.
    allocated: u64,
    /// Bytes used outside what the fake stores (the user's, or the rest of the team's).
    used_elsewhere: u64,
    /// Team mode: the member's own limit (0: none).
    team: Option<u64>,
}

struct Shared {
    store: Mutex<Store>,
    counter: AtomicU64,
    token_requests: AtomicU64,
    expired_rejections: AtomicU64,
    rate_limited: AtomicU64,
    appends: AtomicU64,
    received: AtomicU64,
    auth: crate::authcode::AuthCodes,
}

/// A running fake Dropbox. Dropping it stops the server.
pub struct FakeDropbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDropbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeDropbox {
    /// Start on 127.0.0.1 with a free port.
    pub async fn start() -> FakeDropbox {
        let shared = Arc::new(Shared {
            // A Basic account's 2 GB.
            store: Mutex::new(Store {
                space: Space { allocated: 2_000_000_000, ..Space::default() },
                ..Store::default()
            }),
            counter: AtomicU64::new(1),
            token_requests: AtomicU64::new(0),
            expired_rejections: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            received: AtomicU64::new(0),
            auth: Default::default(),
        });
        let app = Router::new()
            .route("/oauth2/token", axum::routing::post(token))
            .route("/oauth2/authorize", axum::routing::get(authorize))
            .fallback(api)
            .layer(DefaultBodyLimit::max(MAX_UPLOAD_CALL + 1024))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDropbox { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT` (serves both the API and content hosts).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OAuth token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.base_url())
    }

    /// The authorize endpoint (`https://www.dropbox.com/oauth2/authorize`):
    /// answers as if the user consented, with a 302 to the redirect URI.
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth2/authorize", self.base_url())
    }

    /// Answer the next authorizations with `error=access_denied` (the user
    /// clicked Cancel), or consent again.
    pub fn deny_authorization(&self, deny: bool) {
        self.shared.auth.set_deny(deny);
    }

    /// Authorization codes exchanged for tokens.
    pub fn code_exchanges(&self) -> u64 {
        self.shared.auth.exchanges.load(Ordering::Relaxed)
    }

    /// Issue an access token directly (as if the app had just been authorised).
    pub fn issue_access_token(&self) -> String {
        let token = format!("fake-access-{}", self.shared.counter.fetch_add(1, Ordering::Relaxed));
        self.shared.store.lock().expect("lock").valid_tokens.insert(token.clone());
        token
    }

    /// Every access token issued so far expires now.
    pub fn expire_access_tokens(&self) {
        let mut store = self.shared.store.lock().expect("lock");
        let tokens: Vec<String> = store.valid_tokens.drain().collect();
        store.expired_tokens.extend(tokens);
    }

    /// Every access token expires after `calls` more authorised calls.
    pub fn expire_access_tokens_after(&self, calls: u64) {
        self.shared.store.lock().expect("lock").expire_after = Some(calls);
    }

    /// Answer the next `count` API calls with 429 and `Retry-After: secs`.
    pub fn inject_rate_limit(&self, count: u64, secs: u64) {
        let mut store = self.shared.store.lock().expect("lock");
        store.rate_limit = count;
        store.rate_limit_secs = secs;
    }

    /// The refresh token is revoked: refreshes get `invalid_grant`.
    pub fn revoke_refresh_token(&self) {
        self.shared.store.lock().expect("lock").refresh_revoked = true;
    }

    /// Successful and failed calls to the token endpoint.
    /// An individual account of `allocated` bytes, `used_elsewhere` of
    /// them taken besides what the fake stores.
    pub fn set_space(&self, allocated: u64, used_elsewhere: u64) {
        self.shared.store.lock().expect("lock").space = Space { allocated, used_elsewhere, team: None };
    }
    /// A team account: `team_allocated` bytes shared, `team_used_elsewhere`
    /// taken by other members, and this member limited to `member_allocated`
    /// (0: no member limit).
    pub fn set_team_space(&self, team_allocated: u64, team_used_elsewhere: u64, member_allocated: u64) {
        self.shared.store.lock().expect("lock").space =
            Space { allocated: team_allocated, used_elsewhere: team_used_elsewhere, team: Some(member_allocated) };
    }
    /// Calls to the token endpoint.
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::Relaxed)
    }

    /// Calls refused with `expired_access_token`.
    pub fn expired_rejections(&self) -> u64 {
        self.shared.expired_rejections.load(Ordering::Relaxed)
    }

    /// Calls answered with an injected 429.
    pub fn rate_limited(&self) -> u64 {
        self.shared.rate_limited.load(Ordering::Relaxed)
    }

    /// Successful `upload_session/append_v2` calls.
    pub fn appends(&self) -> u64 {
        self.shared.appends.load(Ordering::Relaxed)
    }

    /// Upload bytes received so far (upload, start, append, finish bodies).
    pub fn bytes_received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// Upload sessions started and not finished.
    pub fn open_sessions(&self) -> usize {
        self.shared.store.lock().expect("lock").sessions.values().filter(|s| !s.closed).count()
    }

    /// Number of files stored.
    pub fn file_count(&self) -> usize {
        self.shared.store.lock().expect("lock").files.len()
    }

    /// The bytes of a stored file (path as given to the API, e.g. `/a/b.bin`).
    pub fn file(&self, path: &str) -> Option<Bytes> {
        self.shared.store.lock().expect("lock").files.get(&path.to_lowercase()).map(|f| f.data.clone())
    }
}

// ---------------------------------------------------------------- responses

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

/// A 409 endpoint error: `error_summary` is the tag path plus a suffix.
fn endpoint_error(summary: &str, error: Value) -> Response {
    json_response(StatusCode::CONFLICT, json!({ "error_summary": format!("{summary}/..."), "error": error }))
}

fn bad_request(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("Error in call to API function: {msg}")).into_response()
}

fn auth_error(tag: &str) -> Response {
    json_response(StatusCode::UNAUTHORIZED, json!({ "error_summary": format!("{tag}/"), "error": { ".tag": tag } }))
}

fn path_not_found(outer: &str) -> Response {
    endpoint_error(&format!("{outer}/not_found"), json!({ ".tag": outer, outer: { ".tag": "not_found" } }))
}

fn rfc3339(t: SystemTime) -> String {
    // httpdate gives RFC 1123; Dropbox uses "%Y-%m-%dT%H:%M:%SZ".
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to a (year, month, day) date (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn file_metadata(f: &FileEntry) -> Value {
    let name = f.path_display.rsplit('/').next().unwrap_or_default();
    json!({
        ".tag": "file",
        "name": name,
        "id": f.id,
        "path_lower": f.path_display.to_lowercase(),
        "path_display": f.path_display,
        "client_modified": rfc3339(f.server_modified),
        "server_modified": rfc3339(f.server_modified),
        "rev": f.rev,
        "size": f.data.len(),
        "is_downloadable": true,
    })
}

/// A `users/get_current_account` answer: a FullAccount with every field the
/// documentation marks as always present.
fn full_account() -> Value {
    json!({
        "account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
        "name": {
            "given_name": "Fake", "surname": "User", "familiar_name": "Fake",
            "display_name": "Fake User", "abbreviated_name": "FU",
        },
        "email": "fake@example.invalid",
        "email_verified": true,
        "disabled": false,
        "locale": "en",
        "referral_link": "https://db.tt/fake",
        "is_paired": false,
        "account_type": { ".tag": "basic" },
        "root_info": { ".tag": "user", "root_namespace_id": "3235641", "home_namespace_id": "3235641" },
        "country": "US",
    })
}

/// A `users/get_space_usage` answer.
fn space_usage(s: &Store) -> Value {
    let mine: u64 = s.files.values().map(|f| f.data.len() as u64).sum();
    let sp = &s.space;
    match sp.team {
        None => json!({ "used": mine + sp.used_elsewhere,
                        "allocation": { ".tag": "individual", "allocated": sp.allocated } }),
        Some(member) => json!({
            "used": mine,
            "allocation": {
                ".tag": "team",
                "used": mine + sp.used_elsewhere,
                "allocated": sp.allocated,
                "user_within_team_space_allocated": member,
                "user_within_team_space_limit_type": { ".tag": if member == 0 { "off" } else { "stop_sync" } },
                "user_within_team_space_used_cached": mine,
            },
        }),
    }
}

fn folder_metadata(path_lower: &str) -> Value {
    json!({
        ".tag": "folder",
        "name": path_lower.rsplit('/').next().unwrap_or_default(),
        "id": format!("id:folder{}", path_lower.len()),
        "path_lower": path_lower,
        "path_display": path_lower,
    })
}

// ---------------------------------------------------------------- token endpoint

async fn authorize(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    shared.auth.authorize(APP_KEY, &q)
}

async fn token(State(shared): State<Arc<Shared>>, Form(form): Form<HashMap<String, String>>) -> Response {
    shared.token_requests.fetch_add(1, Ordering::Relaxed);
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("grant_type") == "authorization_code" {
        // PKCE apps send no secret; a secret that is sent must be right.
        if get("client_id") != APP_KEY || form.get("client_secret").is_some_and(|s| s != APP_SECRET) {
            return json_response(StatusCode::BAD_REQUEST, json!({ "error": "invalid_client" }));
        }
        if let Err(crate::authcode::ExchangeError(status, body)) = shared.auth.exchange(&form) {
            return json_response(status, body);
        }
        let token = format!("fake-access-{}", shared.counter.fetch_add(1, Ordering::Relaxed));
        shared.store.lock().expect("lock").valid_tokens.insert(token.clone());
        return json_response(
            StatusCode::OK,
            json!({ "access_token": token, "token_type": "bearer", "expires_in": ACCESS_TOKEN_LIFETIME_SECS,
                    "refresh_token": REFRESH_TOKEN, "account_id": "dbid:fake-account", "uid": "12345",
                    "scope": "files.content.read files.content.write files.metadata.read" }),
        );
    }
    if get("grant_type") != "refresh_token" {
        return json_response(StatusCode::BAD_REQUEST, json!({ "error": "unsupported_grant_type" }));
    }
    if get("client_id") != APP_KEY || get("client_secret") != APP_SECRET {
        return json_response(StatusCode::BAD_REQUEST, json!({ "error": "invalid_client" }));
    }
    let revoked = shared.store.lock().expect("lock").refresh_revoked;
    if get("refresh_token") != REFRESH_TOKEN || revoked {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_grant", "error_description": "refresh token is invalid or revoked" }),
        );
    }
    let token = format!("fake-access-{}", shared.counter.fetch_add(1, Ordering::Relaxed));
    shared.store.lock().expect("lock").valid_tokens.insert(token.clone());
    json_response(
        StatusCode::OK,
        json!({ "access_token": token, "token_type": "bearer", "expires_in": ACCESS_TOKEN_LIFETIME_SECS }),
    )
}

// ---------------------------------------------------------------- API endpoints

struct Call<'a> {
    headers: &'a HeaderMap,
    body: Bytes,
}

impl Call<'_> {
    /// The JSON argument: `Dropbox-API-Arg` for content endpoints, the body for RPC.
    fn arg(&self, content: bool) -> Result<Value, Response> {
        if content {
            let raw = self.headers.get("dropbox-api-arg").ok_or_else(|| bad_request("missing Dropbox-API-Arg"))?;
            let text = raw.to_str().map_err(|_| bad_request("Dropbox-API-Arg must be ASCII (escape with \\u)"))?;
            serde_json::from_str(text).map_err(|_| bad_request("could not decode Dropbox-API-Arg as JSON"))
        } else if self.body.is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_slice(&self.body).map_err(|_| bad_request("could not decode input as JSON"))
        }
    }
}

async fn api(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    // Authorization first, as Dropbox does.
    let Some(bearer) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
    else {
        return bad_request("Must provide HTTP header \"Authorization\"");
    };
    {
        let mut store = shared.store.lock().expect("lock");
        if store.expired_tokens.contains(&bearer) {
            shared.expired_rejections.fetch_add(1, Ordering::Relaxed);
            return auth_error("expired_access_token");
        }
        if !store.valid_tokens.contains(&bearer) {
            return auth_error("invalid_access_token");
        }
        if store.rate_limit > 0 {
            store.rate_limit -= 1;
            shared.rate_limited.fetch_add(1, Ordering::Relaxed);
            let secs = store.rate_limit_secs;
            let mut resp = json_response(
                StatusCode::TOO_MANY_REQUESTS,
                json!({ "error_summary": "too_many_requests/...",
                        "error": { "reason": { ".tag": "too_many_requests" }, "retry_after": secs } }),
            );
            resp.headers_mut().insert("retry-after", HeaderValue::from(secs));
            return resp;
        }
        if let Some(n) = store.expire_after.as_mut() {
            if *n == 0 {
                store.expire_after = None;
                let tokens: Vec<String> = store.valid_tokens.drain().collect();
                store.expired_tokens.extend(tokens);
                shared.expired_rejections.fetch_add(1, Ordering::Relaxed);
                return auth_error("expired_access_token");
            }
            *n -= 1;
        }
    }
    let call = Call { headers: &headers, body };
    let result = match path.as_str() {
        "/2/users/get_current_account" => Ok(json_response(StatusCode::OK, full_account())),
        "/2/users/get_space_usage" => {
            Ok(json_response(StatusCode::OK, space_usage(&shared.store.lock().expect("lock"))))
        }
        "/2/files/upload" => upload(&shared, &call),
        "/2/files/upload_session/start" => session_start(&shared, &call),
        "/2/files/upload_session/append_v2" => session_append(&shared, &call),
        "/2/files/upload_session/finish" => session_finish(&shared, &call),
        "/2/files/download" => download(&shared, &call),
        "/2/files/get_metadata" => get_metadata(&shared, &call),
        "/2/files/delete_v2" => delete(&shared, &call),
        "/2/files/list_folder" => list_folder(&shared, &call),
        "/2/files/list_folder/continue" => list_continue(&shared, &call),
        _ => Err(bad_request(&format!("Unknown API function: \"{path}\""))),
    };
    result.unwrap_or_else(|r| r)
}

type R = Result<Response, Response>;

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str, Response> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| bad_request(&format!("missing or invalid field \"{key}\"")))
}

/// Dropbox paths: "" is the root, others start with "/" and do not end with it.
fn check_path(path: &str) -> Result<(), Response> {
    let ok = path.is_empty()
        || (path.starts_with('/') && !path.ends_with('/') && !path.contains("//") && !path.contains('\\'));
    if ok { Ok(()) } else { Err(bad_request(&format!("path '{path}' did not match pattern"))) }
}

fn next_id(shared: &Shared) -> u64 {
    shared.counter.fetch_add(1, Ordering::Relaxed)
}

/// Commit bytes at `path` following a CommitInfo (mode add/overwrite, autorename).
fn commit(shared: &Shared, store: &mut Store, commit: &Value, data: Bytes) -> Result<Value, (String, Value)> {
    let path = commit.get("path").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mode = match commit.get("mode") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.get(".tag").and_then(Value::as_str).unwrap_or("add").to_owned(),
        None => "add".to_owned(),
    };
    let autorename = commit.get("autorename").and_then(Value::as_bool).unwrap_or(false);
    let lower = path.to_lowercase();
    let mut final_lower = lower.clone();
    let mut final_display = path.clone();
    if store.folders.contains(&lower) {
        return Err(("path/conflict/folder".into(), json!({ ".tag": "conflict", "conflict": { ".tag": "folder" } })));
    }
    if store.files.contains_key(&lower) && mode != "overwrite" {
        if !autorename {
            return Err(("path/conflict/file".into(), json!({ ".tag": "conflict", "conflict": { ".tag": "file" } })));
        }
        let mut n = 1;
        while store.files.contains_key(&final_lower) {
            final_display = format!("{path} ({n})");
            final_lower = final_display.to_lowercase();
            n += 1;
        }
    }
    // Parent folders must not be files.
    let mut parent = final_lower.as_str();
    let mut parents = Vec::new();
    while let Some((p, _)) = parent.rsplit_once('/') {
        if p.is_empty() {
            break;
        }
        if store.files.contains_key(p) {
            return Err((
                "path/conflict/file_ancestor".into(),
                json!({ ".tag": "conflict", "conflict": { ".tag": "file_ancestor" } }),
            ));
        }
        parents.push(p.to_owned());
        parent = p;
    }
    store.folders.extend(parents);
    let id = next_id(shared);
    let entry = FileEntry {
        path_display: final_display,
        id: format!("id:fake{id}"),
        rev: format!("{id:015x}"),
        data,
        server_modified: SystemTime::now(),
    };
    let meta = file_metadata(&entry);
    store.files.insert(final_lower, entry);
    Ok(meta)
}

fn upload(shared: &Shared, call: &Call) -> R {
    shared.received.fetch_add(call.body.len() as u64, Ordering::Relaxed);
    let arg = call.arg(true)?;
    let path = str_field(&arg, "path")?;
    check_path(path)?;
    if path.is_empty() {
        return Err(bad_request("path: the root folder cannot be a file"));
    }
    let mut store = shared.store.lock().expect("lock");
    match commit(shared, &mut store, &arg, call.body.clone()) {
        Ok(meta) => Ok(json_response(StatusCode::OK, meta)),
        Err((summary, reason)) => Err(endpoint_error(
            &summary,
            json!({ ".tag": "path", "reason": reason, "upload_session_id": format!("fake-session-{}", next_id(shared)) }),
        )),
    }
}

fn session_start(shared: &Shared, call: &Call) -> R {
    shared.received.fetch_add(call.body.len() as u64, Ordering::Relaxed);
    let arg = call.arg(true)?;
    let close = arg.get("close").and_then(Value::as_bool).unwrap_or(false);
    let id = format!("fake-session-{}", next_id(shared));
    shared.store.lock().expect("lock").sessions.insert(id.clone(), Session { data: call.body.to_vec(), closed: close });
    Ok(json_response(StatusCode::OK, json!({ "session_id": id })))
}

/// Look up a session cursor; `incorrect_offset` when the offset is not where
/// the session's data ends.
fn check_cursor<'a>(store: &'a mut Store, cursor: &Value, outer: Option<&str>) -> Result<&'a mut Session, Response> {
    let wrap = |tag_summary: &str, inner: Value| match outer {
        Some(o) => endpoint_error(&format!("{o}/{tag_summary}"), json!({ ".tag": o, o: inner })),
        None => endpoint_error(tag_summary, inner),
    };
    let id = cursor.get("session_id").and_then(Value::as_str).unwrap_or_default();
    let offset = cursor.get("offset").and_then(Value::as_u64).ok_or_else(|| bad_request("cursor.offset missing"))?;
    let Some(session) = store.sessions.get_mut(id) else {
        return Err(wrap("not_found", json!({ ".tag": "not_found" })));
    };
    if session.closed {
        return Err(wrap("closed", json!({ ".tag": "closed" })));
    }
    if offset != session.data.len() as u64 {
        let correct = session.data.len();
        return Err(wrap("incorrect_offset", json!({ ".tag": "incorrect_offset", "correct_offset": correct })));
    }
    Ok(session)
}

fn session_append(shared: &Shared, call: &Call) -> R {
    shared.received.fetch_add(call.body.len() as u64, Ordering::Relaxed);
    let arg = call.arg(true)?;
    let cursor = arg.get("cursor").cloned().unwrap_or(Value::Null);
    let close = arg.get("close").and_then(Value::as_bool).unwrap_or(false);
    let mut store = shared.store.lock().expect("lock");
    let session = check_cursor(&mut store, &cursor, None)?;
    if !close && !call.body.len().is_multiple_of(CHUNK_UNIT) {
        return Err(endpoint_error(
            "concurrent_session_invalid_data_size",
            json!({ ".tag": "concurrent_session_invalid_data_size" }),
        ));
    }
    session.data.extend_from_slice(&call.body);
    session.closed = close;
    shared.appends.fetch_add(1, Ordering::Relaxed);
    Ok(json_response(StatusCode::OK, Value::Null))
}

fn session_finish(shared: &Shared, call: &Call) -> R {
    shared.received.fetch_add(call.body.len() as u64, Ordering::Relaxed);
    let arg = call.arg(true)?;
    let cursor = arg.get("cursor").cloned().unwrap_or(Value::Null);
    let commit_info = arg.get("commit").cloned().ok_or_else(|| bad_request("missing commit"))?;
    let path = str_field(&commit_info, "path")?;
    check_path(path)?;
    let mut store = shared.store.lock().expect("lock");
    let session = check_cursor(&mut store, &cursor, Some("lookup_failed"))?;
    session.data.extend_from_slice(&call.body);
    let data = Bytes::from(std::mem::take(&mut session.data));
    let id = cursor.get("session_id").and_then(Value::as_str).unwrap_or_default().to_owned();
    match commit(shared, &mut store, &commit_info, data.clone()) {
        Ok(meta) => {
            store.sessions.remove(&id);
            Ok(json_response(StatusCode::OK, meta))
        }
        Err((summary, reason)) => {
            // The session stays usable, as documented (finish may be retried).
            if let Some(s) = store.sessions.get_mut(&id) {
                s.data = data.to_vec();
            }
            Err(endpoint_error(&summary, json!({ ".tag": "path", "path": reason })))
        }
    }
}

fn lookup_file(store: &Store, path: &str) -> Option<FileEntry> {
    store.files.get(&path.to_lowercase()).cloned()
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against `size`: Ok(None) without a
/// Range header, Err(()) when not satisfiable.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(raw) = headers.get("range").and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let spec = raw.trim().strip_prefix("bytes=").ok_or(())?;
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            if n == 0 || size == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size - 1)
        }
        (s, "") => (s.parse().map_err(|_| ())?, size.saturating_sub(1)),
        (s, e) => (s.parse().map_err(|_| ())?, e.parse::<u64>().map_err(|_| ())?.min(size.saturating_sub(1))),
    };
    if start >= size || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

fn download(shared: &Shared, call: &Call) -> R {
    let arg = call.arg(true)?;
    let path = str_field(&arg, "path")?;
    check_path(path)?;
    let store = shared.store.lock().expect("lock");
    let Some(file) = lookup_file(&store, path) else {
        if store.folders.contains(&path.to_lowercase()) {
            return Err(endpoint_error("path/not_file", json!({ ".tag": "path", "path": { ".tag": "not_file" } })));
        }
        return Err(path_not_found("path"));
    };
    drop(store);
    let size = file.data.len() as u64;
    let result = file_metadata(&file).to_string();
    let result = escape_non_ascii(&result);
    let (status, body, content_range) = match parse_range(call.headers, size) {
        Ok(None) => (StatusCode::OK, file.data.clone(), None),
        Ok(Some((s, e))) => (
            StatusCode::PARTIAL_CONTENT,
            file.data.slice(s as usize..=e as usize),
            Some(format!("bytes {s}-{e}/{size}")),
        ),
        Err(()) => {
            let mut resp = (StatusCode::RANGE_NOT_SATISFIABLE, "").into_response();
            resp.headers_mut()
                .insert("content-range", HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"));
            return Err(resp);
        }
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/octet-stream"));
    h.insert("dropbox-api-result", HeaderValue::from_str(&result).expect("ascii"));
    if let Some(cr) = content_range {
        h.insert("content-range", HeaderValue::from_str(&cr).expect("ascii"));
    }
    Ok(resp)
}

/// HTTP headers carry ASCII: escape everything else as `\uXXXX` (surrogate
/// pairs above the BMP), as the docs say Dropbox does.
pub fn escape_non_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn get_metadata(shared: &Shared, call: &Call) -> R {
    let arg = call.arg(false)?;
    let path = str_field(&arg, "path")?;
    check_path(path)?;
    if path.is_empty() {
        return Err(bad_request("get_metadata of the root folder is not supported"));
    }
    let store = shared.store.lock().expect("lock");
    if let Some(f) = lookup_file(&store, path) {
        return Ok(json_response(StatusCode::OK, file_metadata(&f)));
    }
    if store.folders.contains(&path.to_lowercase()) {
        return Ok(json_response(StatusCode::OK, folder_metadata(&path.to_lowercase())));
    }
    Err(path_not_found("path"))
}

fn delete(shared: &Shared, call: &Call) -> R {
    let arg = call.arg(false)?;
    let path = str_field(&arg, "path")?;
    check_path(path)?;
    let lower = path.to_lowercase();
    let mut store = shared.store.lock().expect("lock");
    if let Some(f) = store.files.remove(&lower) {
        return Ok(json_response(StatusCode::OK, json!({ "metadata": file_metadata(&f) })));
    }
    if store.folders.remove(&lower) {
        let inside = format!("{lower}/");
        store.files.retain(|k, _| !k.starts_with(&inside));
        store.folders.retain(|k| !k.starts_with(&inside));
        return Ok(json_response(StatusCode::OK, json!({ "metadata": folder_metadata(&lower) })));
    }
    Err(path_not_found("path_lookup"))
}

/// Cursor: opaque to clients; here hex of `{"p": folder, "r": recursive,
/// "l": limit, "a": last path returned}`.
fn encode_cursor(v: &Value) -> String {
    v.to_string().bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(s: &str) -> Option<Value> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect();
    serde_json::from_slice(&bytes?).ok()
}

fn list_page(store: &Store, folder: &str, recursive: bool, limit: usize, after: Option<&str>) -> Value {
    let inside = if folder.is_empty() { "/".to_owned() } else { format!("{folder}/") };
    let mut entries: Vec<(String, Value)> = Vec::new();
    let wanted = |k: &str| {
        k.starts_with(&inside) && after.is_none_or(|a| k > a) && (recursive || !k[inside.len()..].contains('/'))
    };
    let files = store.files.iter().filter(|(k, _)| wanted(k)).map(|(k, f)| (k.clone(), file_metadata(f)));
    let folders = store.folders.iter().filter(|k| wanted(k)).map(|k| (k.clone(), folder_metadata(k)));
    entries.extend(files);
    entries.extend(folders);
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let has_more = entries.len() > limit;
    entries.truncate(limit);
    let last = entries.last().map(|(k, _)| k.clone()).or_else(|| after.map(str::to_owned));
    let cursor = encode_cursor(&json!({ "p": folder, "r": recursive, "l": limit, "a": last }));
    json!({ "entries": entries.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "cursor": cursor, "has_more": has_more })
}

fn list_folder(shared: &Shared, call: &Call) -> R {
    let arg = call.arg(false)?;
    let path = str_field(&arg, "path")?;
    check_path(path)?;
    let recursive = arg.get("recursive").and_then(Value::as_bool).unwrap_or(false);
    let limit = match arg.get("limit").and_then(Value::as_u64) {
        Some(l) if (1..=2000).contains(&l) => l as usize,
        Some(_) => return Err(bad_request("limit: value must be between 1 and 2000")),
        None => 2000,
    };
    let store = shared.store.lock().expect("lock");
    let lower = path.to_lowercase();
    if !lower.is_empty() && !store.folders.contains(&lower) {
        if store.files.contains_key(&lower) {
            return Err(endpoint_error("path/not_folder", json!({ ".tag": "path", "path": { ".tag": "not_folder" } })));
        }
        return Err(path_not_found("path"));
    }
    Ok(json_response(StatusCode::OK, list_page(&store, &lower, recursive, limit, None)))
}

fn list_continue(shared: &Shared, call: &Call) -> R {
    let arg = call.arg(false)?;
    let cursor = str_field(&arg, "cursor")?;
    let Some(c) = decode_cursor(cursor) else {
        return Err(bad_request("cursor: invalid"));
    };
    let folder = c["p"].as_str().unwrap_or_default();
    let store = shared.store.lock().expect("lock");
    if !folder.is_empty() && !store.folders.contains(folder) {
        return Err(endpoint_error("reset/", json!({ ".tag": "reset" })));
    }
    let page = list_page(
        &store,
        folder,
        c["r"].as_bool().unwrap_or(false),
        c["l"].as_u64().unwrap_or(2000) as usize,
        c["a"].as_str(),
    );
    Ok(json_response(StatusCode::OK, page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_409_871);
        assert_eq!(rfc3339(t), "2025-11-29T09:51:11Z");
    }

    #[test]
    fn non_ascii_is_escaped_for_headers() {
        assert_eq!(escape_non_ascii("{\"a\":\"ü\"}"), "{\"a\":\"\\u00fc\"}");
        assert_eq!(escape_non_ascii("😀"), "\\ud83d\\ude00");
    }

    #[test]
    fn cursors_round_trip() {
        let v = json!({"p": "/x", "a": null});
        assert_eq!(decode_cursor(&encode_cursor(&v)).unwrap(), v);
    }
}
