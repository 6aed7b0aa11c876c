//! A fake of the Google Drive API v3 (files resource), from the public
//! reference at <https://developers.google.com/drive/api/reference/rest/v3/files>
//! and the guides:
//!
//! - "Search for files and folders" (`q`): the subset `'ID' in parents`,
//!   `name = '...'`, `mimeType = '...'`, `mimeType != '...'`,
//!   `trashed = false`, joined with `and`; strings in single quotes with
//!   `\'` and `\\` escapes. files.list pages with `pageSize` / `pageToken` /
//!   `nextPageToken`.
//! - "Upload file data", resumable uploads: POST
//!   `/upload/drive/v3/files?uploadType=resumable` with JSON metadata answers
//!   200 with the session URI in `Location`; PUTs with `Content-Range:
//!   bytes s-e/*` (or `/total` on the last) answer 308 with `Range:
//!   bytes=0-N` until the last, then 200 with the file; chunks must be
//!   multiples of 256 KiB except the last; `Content-Range: bytes */0` sends
//!   an empty file. DELETE on the session URI cancels it (499).
//! - files.get with `alt=media` honours `Range` (206 / 416); files.delete
//!   answers 204, 404 `notFound` for unknown ids.
//! - "Resolve errors": `{"error": {"code", "message", "errors": [{"domain",
//!   "reason", "message"}]}}`; 401 `authError`; 403 `rateLimitExceeded` /
//!   `userRateLimitExceeded` (injectable).
//! - about.get (<https://developers.google.com/drive/api/reference/rest/v3/about>):
//!   `fields` is required (400 without it); `storageQuota` holds int64s as
//!   JSON strings: `limit` (absent when the storage is unlimited), `usage`
//!   (all services), `usageInDrive`, `usageInDriveTrash`. The fake's usage
//!   is what it stores plus a configurable use by other services.
//! - OAuth 2.0 for web server apps, "Redirecting to Google's OAuth 2.0
//!   server" (`/o/oauth2/v2/auth` with `access_type=offline`, PKCE) and
//!   "Exchange authorization code for refresh and access tokens" (see
//!   [`crate::authcode`]).
//! - OAuth 2.0 for web server apps, "Refreshing an access token": POST
//!   `/token` `grant_type=refresh_token` → `{"access_token", "expires_in",
//!   "token_type"}`; revoked → 400 `invalid_grant`.

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
use axum::extract::{DefaultBodyLimit, Form, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The OAuth client id the fake accepts.
pub const CLIENT_ID: &str = "fake-gdrive-client.apps.googleusercontent.com";
/// The OAuth client secret the fake accepts.
pub const CLIENT_SECRET: &str = "fake-gdrive-secret";
/// A refresh token the fake accepts from the start.
pub const REFRESH_TOKEN: &str = "fake-gdrive-refresh";
/// Resumable chunks are multiples of 256 KiB.
pub const CHUNK_UNIT: usize = 256 * 1024;
/// Drive's MIME type of folders.
pub const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
/// Email of the fake service account.
pub const SERVICE_ACCOUNT_EMAIL: &str = "csal-test@fake-project.iam.gserviceaccount.com";

/// An RSA key generated once for these tests (`openssl genpkey -algorithm
/// RSA`), used nowhere else and worthless outside this fake: service-account
/// clients need a real key to sign their JWT assertion.
pub const TEST_SERVICE_ACCOUNT_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDGjIj62NBMUzYm\n8bIITcirD6D16YrHGnrVTe0wS7IdFASvfhTqReINNdGB3Kpuq+1nmbEIx4QXtss2\ny+iaGqu6ZzaVI0QZGYZ2omOkly2N6kpJv1OCxsYeAdQ6NhJqAUjJ+zvBGW6OhsAE\n8HDrFOpPAEr3COKXgPBvusSiUkTJlyAbmBCVJ3eS7p3Xa9rq/qUHG0+tNAIzr/D2\ny3d62ZSJQ7mlraAcWOeq8V1jR0nNsdF5ssKH66CPDV4ZtBHM1j56UEr/OFZOF6a9\ngv7jccsmKUhNAxJwv3NsdsbIU5dU8ilxjSlPqZ0giEit6cBZj8hFmSefVRTmstos\n3G5PGDrVAgMBAAECggEAFK2nSITTMNfLwIOUmKPNPe+bQnFHyFO8LkH27Xw8uSWQ\nFVzqvbl4gQq1XrKGN4+FYrBRjUoGOlgJ0xOqjn4vm3LLbv3kxj5v0CQ6f3ZVQr3/\nba3U+z5LfO2Q1l0yTsMCezLEtug4qPRkxD7sa7dabc7of9D3lHLT17caapNp4ZrB\n8TAKgbWaTvXWTlvQlabmfyhf7O+LtGUIXolyO0sEsKDq6y4E6dxkKOaD3A1LHmiF\nZqNidpnCsJnUBik4u8dGj5O15NvZDs1FpNCXRZhg+XKkT7Pj+hEGuA9erqoCGgZm\neu6dhDL0JZZAMagAcQ3vtUR4HYzNz4XlchdLYF/DgwKBgQD9G8br7aO6uiEup/NK\n6gParpi5clpE1cpcMjiNjvQoCh940JkmtqEO7SKrb9VDx8a809So6ybWbTCcHtfQ\nD6dswA9Y7QAcC5Z2yYN1KgwB8D8xniXVB+0A4HdZ9hEwhdd/T4X0tKJtshVOgBe/\nhrzCDRxYN4Vn9E1ot+Y+KYOYuwKBgQDI0TJ3C+pHj92lVlxNtmYSaYFdYJVEOStL\nrxu+7h5SWWMrIZhrEwrnYHKIOPn/IhSR5QSFhNTLPnEI3hCjcXUEveZ//inUB8tz\nuVRRZr8fpo+AO1/ZZnWDvYWJ9miN7Uv3cJ6G65yZDEeqYzjcYkp47SY2V1SHTAKT\n1PziWijJrwKBgQCXn/g+hZG73pzaMkqQ6jd83XMoRNTGv7wGFx/BzY1+HvJTkcLt\naiJ5qp1GTixX+mmX3N5cguI1OhwQqnlmbrpBb5zCDNgv9NEiP/28RoAC+UUiGDdZ\nsvHLwKw+/CW4B7Xc0mrQ+RUE2dXhvOJ9Hd4d8XS1dC065SMqRGBthLkM2QKBgQCE\nYoTmPhCgRJNVn+0RviDkGnGR4U4Fv7pvFm0wHUIX/52EnY0haVhS2B4o94a3TvxI\ngbXNX5f4tJ1Hvz0wwmbmTVpbHm7svIa/L3oKf7WXY/JOEtZJN2ZZBuO1459hkQH3\niWK4hzKhIptMFEUz5Ag8V/pM8J1k5BL+6fYcMluZOQKBgBYEfVnqV0DWpfwGWNTK\nXfFAZ7ojOxJLpmTQp0INyC0uIu4i0Bp9TK6bybqKkJNdgeOrLa5hrPPcW/z1gnrV\nwt8nKlxYJCLqScDJEAbf3ZP4PWyLaFxOBQ+g9monEHVwd2L28+AOImhrrnsQ9LiU\nDMZ94y1qDxmnB4oX9uK8myxV\n-----END PRIVATE KEY-----\n";

#[derive(Clone)]
struct File {
    id: String,
    name: String,
    parent: String,
    mime: String,
    data: Bytes,
    modified: SystemTime,
}

struct Upload {
    name: String,
    parent: String,
    mime: String,
    data: Vec<u8>,
}

#[derive(Default)]
struct Store {
    files: BTreeMap<String, File>,
    uploads: HashMap<String, Upload>,
    valid_tokens: HashSet<String>,
    expired_tokens: HashSet<String>,
    revoked: bool,
    rate_limit: u64,
    /// `storageQuota.limit` (None: unlimited).
    quota_limit: Option<u64>,
    /// Usage by other services (Gmail, Photos) counted in `usage`.
    usage_elsewhere: u64,
}

struct Shared {
    store: Mutex<Store>,
    counter: AtomicU64,
    token_requests: AtomicU64,
    chunks: AtomicU64,
    received: AtomicU64,
    base: Mutex<String>,
    auth: crate::authcode::AuthCodes,
}

/// A running fake Google Drive. Dropping it stops the server.
pub struct FakeGoogleDrive {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGoogleDrive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGoogleDrive {
    /// Start the fake on 127.0.0.1 (a free port), with an empty drive.
    pub async fn start() -> FakeGoogleDrive {
        let shared = Arc::new(Shared {
            // A free account's 15 GB.
            store: Mutex::new(Store { quota_limit: Some(15_000_000_000), ..Store::default() }),
            counter: AtomicU64::new(1),
            token_requests: AtomicU64::new(0),
            chunks: AtomicU64::new(0),
            received: AtomicU64::new(0),
            base: Mutex::new(String::new()),
            auth: Default::default(),
        });
        let app = Router::new()
            .route("/token", axum::routing::post(token))
            .route("/o/oauth2/v2/auth", axum::routing::get(authorize))
            .fallback(api)
            .layer(DefaultBodyLimit::max(256 * 1024 * 1024))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        *shared.base.lock().expect("lock") = format!("http://{addr}");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGoogleDrive { addr, shared, task }
    }

    /// Like `https://www.googleapis.com`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Like `https://oauth2.googleapis.com/token`.
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }
    /// Like `https://accounts.google.com/o/oauth2/v2/auth`: answers as if
    /// the user consented, with a 302 to the redirect URI.
    pub fn authorize_url(&self) -> String {
        format!("http://{}/o/oauth2/v2/auth", self.addr)
    }
    /// Answer the next authorizations with `error=access_denied`, or consent again.
    pub fn deny_authorization(&self, deny: bool) {
        self.shared.auth.set_deny(deny);
    }
    /// Authorization codes exchanged for tokens.
    pub fn code_exchanges(&self) -> u64 {
        self.shared.auth.exchanges.load(Ordering::Relaxed)
    }
    /// A service-account key JSON (as downloaded from the Cloud console)
    /// whose `token_uri` is this fake.
    pub fn service_account_json(&self) -> String {
        json!({
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": "fake-key-1",
            "private_key": TEST_SERVICE_ACCOUNT_KEY_PEM,
            "client_email": SERVICE_ACCOUNT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": format!("{}/auth", self.api_url()),
            "token_uri": self.token_url(),
        })
        .to_string()
    }
    /// A fresh valid access token, without the OAuth flow.
    pub fn issue_access_token(&self) -> String {
        let t = format!("fake-gdrive-access-{}", self.shared.counter.fetch_add(1, Ordering::Relaxed));
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
    pub fn revoke_refresh_token(&self) {
        self.shared.store.lock().expect("lock").revoked = true;
    }
    /// The account's storage limit (None: unlimited) and the bytes other
    /// services use of it (about.get's `storageQuota`).
    pub fn set_storage_quota(&self, limit: Option<u64>, usage_elsewhere: u64) {
        let mut s = self.shared.store.lock().expect("lock");
        s.quota_limit = limit;
        s.usage_elsewhere = usage_elsewhere;
    }
    /// Answer the next `count` calls with 403 `userRateLimitExceeded`.
    pub fn inject_rate_limit(&self, count: u64) {
        self.shared.store.lock().expect("lock").rate_limit = count;
    }
    /// Calls to the token endpoint.
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::Relaxed)
    }
    /// Resumable-upload chunks accepted.
    pub fn chunks(&self) -> u64 {
        self.shared.chunks.load(Ordering::Relaxed)
    }
    /// Upload bytes accepted so far.
    pub fn bytes_received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }
    /// Resumable uploads started and not finished.
    pub fn open_uploads(&self) -> usize {
        self.shared.store.lock().expect("lock").uploads.len()
    }
    /// Number of non-folder files.
    pub fn file_count(&self) -> usize {
        self.shared.store.lock().expect("lock").files.values().filter(|f| f.mime != FOLDER_MIME).count()
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

fn google_error(status: StatusCode, reason: &str, domain: &str, message: &str) -> Response {
    json_response(
        status,
        json!({ "error": { "code": status.as_u16(), "message": message,
                           "errors": [{ "domain": domain, "reason": reason, "message": message }] } }),
    )
}

fn not_found(id: &str) -> Response {
    google_error(StatusCode::NOT_FOUND, "notFound", "global", &format!("File not found: {id}."))
}

fn bad(msg: &str) -> Response {
    google_error(StatusCode::BAD_REQUEST, "invalid", "global", msg)
}

fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, dd) = crate::dropbox::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn file_json(f: &File) -> Value {
    let mut v = json!({
        "kind": "drive#file", "id": f.id, "name": f.name, "mimeType": f.mime,
        "parents": [f.parent], "modifiedTime": rfc3339(f.modified), "trashed": false,
    });
    if f.mime != FOLDER_MIME {
        v["size"] = json!(f.data.len().to_string());
    }
    v
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(&v.replace('+', " ")))?
    })
}

pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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
        let t = format!("fake-gdrive-access-{}", shared.counter.fetch_add(1, Ordering::Relaxed));
        shared.store.lock().expect("lock").valid_tokens.insert(t.clone());
        return json_response(
            StatusCode::OK,
            json!({ "access_token": t, "expires_in": 3599, "token_type": "Bearer", "scope": scope,
                    "refresh_token": REFRESH_TOKEN }),
        );
    }
    if get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return jwt_bearer(&shared, get("assertion"));
    }
    if get("grant_type") != "refresh_token" {
        return json_response(StatusCode::BAD_REQUEST, json!({ "error": "unsupported_grant_type" }));
    }
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return json_response(StatusCode::UNAUTHORIZED, json!({ "error": "invalid_client" }));
    }
    let mut s = shared.store.lock().expect("lock");
    if s.revoked || get("refresh_token") != REFRESH_TOKEN {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_grant", "error_description": "Token has been expired or revoked." }),
        );
    }
    let t = format!("fake-gdrive-access-{}", shared.counter.fetch_add(1, Ordering::Relaxed));
    s.valid_tokens.insert(t.clone());
    json_response(StatusCode::OK, json!({ "access_token": t, "expires_in": 3599, "token_type": "Bearer" }))
}

/// "Using OAuth 2.0 for Server to Server Applications": the assertion is a
/// JWT whose claims name the service account (`iss`), the token endpoint
/// (`aud`) and the scopes. The fake checks the claims, not the signature.
fn jwt_bearer(shared: &Shared, assertion: &str) -> Response {
    let invalid = |why: &str| {
        json_response(StatusCode::BAD_REQUEST, json!({ "error": "invalid_grant", "error_description": why }))
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 || parts[2].is_empty() {
        return invalid("Invalid JWT: not a signed JWT");
    }
    let Some(claims) = base64url_decode(parts[1]).and_then(|b| serde_json::from_slice::<Value>(&b).ok()) else {
        return invalid("Invalid JWT: claims are not base64url JSON");
    };
    let base = shared.base.lock().expect("lock").clone();
    if claims["iss"] != SERVICE_ACCOUNT_EMAIL {
        return invalid("Invalid JWT Signature.");
    }
    if claims["aud"] != format!("{base}/token") {
        return invalid("Invalid JWT: wrong audience");
    }
    if !claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|x| x.starts_with("https://www.googleapis.com/auth/drive")))
    {
        return invalid("Invalid JWT: no Drive scope");
    }
    let mut s = shared.store.lock().expect("lock");
    if s.revoked {
        return invalid("Invalid JWT Signature.");
    }
    let t = format!("fake-gdrive-sa-access-{}", shared.counter.fetch_add(1, Ordering::Relaxed));
    s.valid_tokens.insert(t.clone());
    json_response(StatusCode::OK, json!({ "access_token": t, "expires_in": 3599, "token_type": "Bearer" }))
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = chunk.len();
        if n < 2 {
            return None;
        }
        out.push((acc >> 16) as u8);
        if n > 2 {
            out.push((acc >> 8) as u8);
        }
        if n > 3 {
            out.push(acc as u8);
        }
    }
    Some(out)
}

type R = Result<Response, Response>;

async fn api(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    // Session URIs carry their own authority (upload_id).
    if path == "/upload/drive/v3/files" && query_param(&query, "upload_id").is_some() {
        let id = query_param(&query, "upload_id").unwrap_or_default();
        return upload_put(&shared, &method, &id, &headers, body).unwrap_or_else(|r| r);
    }
    let Some(bearer) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
    else {
        return google_error(StatusCode::UNAUTHORIZED, "required", "global", "Login Required.");
    };
    {
        let mut s = shared.store.lock().expect("lock");
        if !s.valid_tokens.contains(&bearer) {
            return google_error(StatusCode::UNAUTHORIZED, "authError", "global", "Invalid Credentials");
        }
        if s.rate_limit > 0 {
            s.rate_limit -= 1;
            return google_error(
                StatusCode::FORBIDDEN,
                "userRateLimitExceeded",
                "usageLimits",
                "User Rate Limit Exceeded.",
            );
        }
    }
    let base = shared.base.lock().expect("lock").clone();
    let result = match (method.as_str(), path.as_str()) {
        ("POST", "/upload/drive/v3/files") => start_upload(&shared, &base, &query, &body),
        ("POST", "/drive/v3/files") => create_metadata(&shared, &body),
        ("GET", "/drive/v3/files") => list(&shared, &query),
        ("GET", "/drive/v3/about") => about(&shared, &query),
        (m, p) if p.starts_with("/drive/v3/files/") => {
            let id = percent_decode(&p["/drive/v3/files/".len()..]).unwrap_or_default();
            match m {
                "GET" => get(&shared, &id, &query, &headers),
                "DELETE" => delete(&shared, &id),
                _ => Err(bad("unsupported method")),
            }
        }
        _ => Err(google_error(StatusCode::NOT_FOUND, "notFound", "global", "Not Found")),
    };
    result.unwrap_or_else(|r| r)
}

/// about.get: only `storageQuota` is served, and only when `fields` asks for it.
fn about(shared: &Shared, query: &str) -> R {
    let Some(fields) = query_param(query, "fields") else {
        return Err(bad("The 'fields' parameter is required for this method."));
    };
    let s = shared.store.lock().expect("lock");
    let mut v = json!({});
    if fields.split(',').any(|f| f.trim() == "storageQuota" || f.trim().starts_with("storageQuota(")) {
        let in_drive: u64 = s.files.values().map(|f| f.data.len() as u64).sum();
        let mut quota = json!({
            "usage": (in_drive + s.usage_elsewhere).to_string(),
            "usageInDrive": in_drive.to_string(),
            "usageInDriveTrash": "0",
        });
        if let Some(limit) = s.quota_limit {
            quota["limit"] = json!(limit.to_string());
        }
        v["storageQuota"] = quota;
    }
    Ok(json_response(StatusCode::OK, v))
}

fn parent_exists(s: &Store, parent: &str) -> bool {
    parent == "root" || s.files.get(parent).is_some_and(|f| f.mime == FOLDER_MIME)
}

fn new_file(shared: &Shared, s: &mut Store, name: String, parent: String, mime: String, data: Bytes) -> Value {
    let id = format!("FAKE{:010}", shared.counter.fetch_add(1, Ordering::Relaxed));
    let f = File { id: id.clone(), name, parent, mime, data, modified: SystemTime::now() };
    let v = file_json(&f);
    s.files.insert(id, f);
    v
}

fn metadata_of(body: &Bytes) -> Result<(String, String, String), Response> {
    let meta: Value =
        if body.is_empty() { json!({}) } else { serde_json::from_slice(body).map_err(|_| bad("bad JSON"))? };
    let name = meta["name"].as_str().unwrap_or("Untitled").to_owned();
    let parent = meta["parents"][0].as_str().unwrap_or("root").to_owned();
    let mime = meta["mimeType"].as_str().unwrap_or("application/octet-stream").to_owned();
    Ok((name, parent, mime))
}

fn create_metadata(shared: &Shared, body: &Bytes) -> R {
    let (name, parent, mime) = metadata_of(body)?;
    let mut s = shared.store.lock().expect("lock");
    if !parent_exists(&s, &parent) {
        return Err(not_found(&parent));
    }
    let v = new_file(shared, &mut s, name, parent, mime, Bytes::new());
    Ok(json_response(StatusCode::OK, v))
}

fn start_upload(shared: &Shared, base: &str, query: &str, body: &Bytes) -> R {
    if query_param(query, "uploadType").as_deref() != Some("resumable") {
        return Err(bad("only uploadType=resumable is served by this fake"));
    }
    let (name, parent, mime) = metadata_of(body)?;
    let mut s = shared.store.lock().expect("lock");
    if !parent_exists(&s, &parent) {
        return Err(not_found(&parent));
    }
    let id = format!("up{}", shared.counter.fetch_add(1, Ordering::Relaxed));
    s.uploads.insert(id.clone(), Upload { name, parent, mime, data: Vec::new() });
    let mut resp = StatusCode::OK.into_response();
    let location = format!("{base}/upload/drive/v3/files?uploadType=resumable&upload_id={id}");
    resp.headers_mut().insert("location", HeaderValue::from_str(&location).expect("ascii"));
    Ok(resp)
}

/// A parsed `Content-Range`: the byte span (None for `*`) and the total (None for `*`).
type ContentRange = (Option<(u64, u64)>, Option<u64>);

/// `bytes s-e/total`, `bytes s-e/*`, `bytes */total`.
fn content_range(headers: &HeaderMap) -> Option<ContentRange> {
    let v = headers.get("content-range")?.to_str().ok()?.trim().strip_prefix("bytes ")?.to_owned();
    let (range, total) = v.split_once('/')?;
    let total = if total == "*" { None } else { Some(total.parse().ok()?) };
    let range = if range == "*" {
        None
    } else {
        let (a, b) = range.split_once('-')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    Some((range, total))
}

fn upload_put(shared: &Shared, method: &Method, id: &str, headers: &HeaderMap, body: Bytes) -> R {
    let mut s = shared.store.lock().expect("lock");
    if method == Method::DELETE {
        s.uploads.remove(id);
        return Ok((StatusCode::from_u16(499).expect("499"), "").into_response());
    }
    if method != Method::PUT {
        return Err(bad("PUT or DELETE"));
    }
    let Some(upload) = s.uploads.get_mut(id) else {
        return Err(not_found(id));
    };
    let Some((range, total)) = content_range(headers) else {
        return Err(bad("Content-Range is required"));
    };
    let have = upload.data.len() as u64;
    if let Some((start, end)) = range {
        if end < start || end - start + 1 != body.len() as u64 {
            return Err(bad("Content-Range does not match the body"));
        }
        if start != have {
            return Err(bad(&format!("chunk starts at {start}, the upload has {have} bytes")));
        }
        let last = total == Some(end + 1);
        if !last && !body.len().is_multiple_of(CHUNK_UNIT) {
            return Err(bad("chunks other than the last must be multiples of 256 KiB"));
        }
        upload.data.extend_from_slice(&body);
        shared.chunks.fetch_add(1, Ordering::Relaxed);
        shared.received.fetch_add(body.len() as u64, Ordering::Relaxed);
    } else if !body.is_empty() {
        return Err(bad("bytes */N carries no body"));
    }
    let have = upload.data.len() as u64;
    if total != Some(have) {
        if total.is_some_and(|t| t < have) {
            return Err(bad("more bytes than the declared total"));
        }
        let mut resp = (StatusCode::PERMANENT_REDIRECT, "").into_response();
        if have > 0 {
            resp.headers_mut().insert("range", HeaderValue::from_str(&format!("bytes=0-{}", have - 1)).expect("ascii"));
        }
        return Ok(resp);
    }
    let up = s.uploads.remove(id).expect("present");
    if !parent_exists(&s, &up.parent) {
        return Err(not_found(&up.parent));
    }
    let v = new_file(shared, &mut s, up.name, up.parent, up.mime, Bytes::from(up.data));
    Ok(json_response(StatusCode::OK, v))
}

fn get(shared: &Shared, id: &str, query: &str, headers: &HeaderMap) -> R {
    let s = shared.store.lock().expect("lock");
    if id == "root" {
        return Ok(json_response(
            StatusCode::OK,
            json!({ "kind": "drive#file", "id": "root", "name": "My Drive", "mimeType": FOLDER_MIME }),
        ));
    }
    let Some(f) = s.files.get(id).cloned() else { return Err(not_found(id)) };
    drop(s);
    if query_param(query, "alt").as_deref() != Some("media") {
        return Ok(json_response(StatusCode::OK, file_json(&f)));
    }
    if f.mime == FOLDER_MIME {
        return Err(google_error(
            StatusCode::FORBIDDEN,
            "fileNotDownloadable",
            "global",
            "Only files with binary content can be downloaded.",
        ));
    }
    let size = f.data.len() as u64;
    let Some(spec) = headers.get("range").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("bytes=")) else {
        return Ok((StatusCode::OK, Body::from(f.data)).into_response());
    };
    let span = spec.split_once('-').and_then(|(a, b)| match (a.trim(), b.trim()) {
        ("", n) => n.parse::<u64>().ok().filter(|&n| n > 0 && size > 0).map(|n| (size.saturating_sub(n), size - 1)),
        (s, "") => s.parse::<u64>().ok().map(|s| (s, size.saturating_sub(1))),
        (s, e) => Some((s.parse().ok()?, e.parse::<u64>().ok()?.min(size.saturating_sub(1)))),
    });
    match span {
        Some((a, b)) if a < size && a <= b => {
            let mut resp =
                (StatusCode::PARTIAL_CONTENT, Body::from(f.data.slice(a as usize..=b as usize))).into_response();
            resp.headers_mut()
                .insert("content-range", HeaderValue::from_str(&format!("bytes {a}-{b}/{size}")).expect("ascii"));
            Ok(resp)
        }
        _ => Err(google_error(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "requestedRangeNotSatisfiable",
            "global",
            "Request range not satisfiable",
        )),
    }
}

fn delete(shared: &Shared, id: &str) -> R {
    let mut s = shared.store.lock().expect("lock");
    if s.files.remove(id).is_none() {
        return Err(not_found(id));
    }
    // Children of a deleted folder go with it.
    loop {
        let orphans: Vec<String> = s
            .files
            .values()
            .filter(|f| f.parent != "root" && !s.files.contains_key(&f.parent))
            .map(|f| f.id.clone())
            .collect();
        if orphans.is_empty() {
            break;
        }
        for o in orphans {
            s.files.remove(&o);
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, PartialEq)]
enum Clause {
    InParents(String),
    NameEq(String),
    MimeEq(String),
    MimeNe(String),
    NotTrashed,
}

/// Parse the supported subset of the Drive query language.
fn parse_q(q: &str) -> Option<Vec<Clause>> {
    let mut clauses = Vec::new();
    let mut rest = q.trim();
    loop {
        let (clause, after) = parse_clause(rest)?;
        clauses.push(clause);
        let after = after.trim_start();
        if after.is_empty() {
            return Some(clauses);
        }
        rest = after.strip_prefix("and ")?.trim_start();
    }
}

fn parse_string(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('\'')?.char_indices();
    let mut out = String::new();
    let body = &s[1..];
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '\'' => return Some((out, &body[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

fn parse_clause(s: &str) -> Option<(Clause, &str)> {
    if s.starts_with('\'') {
        let (value, rest) = parse_string(s)?;
        let rest = rest.trim_start().strip_prefix("in parents")?;
        return Some((Clause::InParents(value), rest));
    }
    if let Some(rest) = s.strip_prefix("trashed = false") {
        return Some((Clause::NotTrashed, rest));
    }
    for (field, op) in [("name", "="), ("mimeType", "!="), ("mimeType", "=")] {
        if let Some(rest) = s.strip_prefix(field).map(str::trim_start).and_then(|r| r.strip_prefix(op)) {
            let (value, rest) = parse_string(rest.trim_start())?;
            let clause = match (field, op) {
                ("name", _) => Clause::NameEq(value),
                (_, "!=") => Clause::MimeNe(value),
                _ => Clause::MimeEq(value),
            };
            return Some((clause, rest));
        }
    }
    None
}

fn list(shared: &Shared, query: &str) -> R {
    let q = query_param(query, "q").unwrap_or_default();
    let clauses =
        if q.is_empty() { Vec::new() } else { parse_q(&q).ok_or_else(|| bad(&format!("Invalid Value: q={q}")))? };
    let page_size: usize = match query_param(query, "pageSize") {
        Some(v) => v.parse().map_err(|_| bad("Invalid pageSize"))?,
        None => 100,
    };
    if !(1..=1000).contains(&page_size) {
        return Err(bad("pageSize must be between 1 and 1000"));
    }
    let after = query_param(query, "pageToken");
    let s = shared.store.lock().expect("lock");
    let matches = |f: &File| {
        clauses.iter().all(|c| match c {
            Clause::InParents(p) => &f.parent == p,
            Clause::NameEq(n) => &f.name == n,
            Clause::MimeEq(m) => &f.mime == m,
            Clause::MimeNe(m) => &f.mime != m,
            Clause::NotTrashed => true,
        })
    };
    let mut found: Vec<&File> =
        s.files.values().filter(|f| matches(f) && after.as_deref().is_none_or(|a| f.id.as_str() > a)).collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    let more = found.len() > page_size;
    found.truncate(page_size);
    let mut body = json!({ "kind": "drive#fileList", "files": found.iter().map(|f| file_json(f)).collect::<Vec<_>>() });
    if more {
        body["nextPageToken"] = json!(found.last().map(|f| f.id.clone()));
    }
    Ok(json_response(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_decodes() {
        assert_eq!(base64url_decode("eyJhIjoxfQ").unwrap(), b"{\"a\":1}");
        assert!(base64url_decode("*").is_none());
    }

    #[test]
    fn query_subset_parses() {
        let c = parse_q("'abc' in parents and name = 'it\\'s' and trashed = false and mimeType != 'x/y'").unwrap();
        assert_eq!(
            c,
            vec![
                Clause::InParents("abc".into()),
                Clause::NameEq("it's".into()),
                Clause::NotTrashed,
                Clause::MimeNe("x/y".into())
            ]
        );
        assert!(parse_q("name contains 'x'").is_none());
    }
}
