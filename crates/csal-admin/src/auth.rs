//! Who may use the admin UI and API: an argon2-hashed admin password, API
//! tokens stored as SHA-256 hashes, in-memory sessions with a CSRF token each.
//!
//! - Browser: `POST /login` with the password sets an HttpOnly,
//!   SameSite=Strict session cookie. Every state-changing request made with
//!   that cookie must carry the session's CSRF token (form field `csrf` or
//!   header `X-CSRF-Token`).
//! - Scripts and recorders: `Authorization: Bearer <token>`; tokens are
//!   created with `csal admin create-token NAME --scope S` and shown once
//!   (stored in the catalog, see `csal_catalog::TokenScope`). No CSRF check
//!   (no cookie). A token's scope decides what it reaches ([`needed_scope`]):
//!   `ingest` only the `PUT`s of `/v1/`, `read` only the `GET`s and `HEAD`s
//!   of `/v1/`, `admin` everything. A browser session is `admin`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use csal_catalog::{Catalog, TokenScope};
use csal_core::{Result, StorageError};

use crate::AdminState;

/// Settings key of the admin password's argon2 hash (PHC string).
pub const PASSWORD_SETTING: &str = "admin.password_hash";
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "csal_session";
/// How long an idle session lives.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept before pre-login ones are dropped.
const MAX_SESSIONS: usize = 10_000;
/// Largest form body the CSRF check buffers.
const MAX_FORM_BYTES: usize = 1 << 20;

pub use csal_catalog::random_token;

/// A fresh random password, for first runs.
pub fn generate_password() -> String {
    random_token(15)
}

fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random source works");
    let salt = SaltString::encode_b64(&salt).map_err(|_| StorageError::permanent("could not encode a salt"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| StorageError::permanent("could not hash the password"))
}

/// Store `password` (argon2) as the admin password.
pub async fn set_password(catalog: &Catalog, password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(StorageError::invalid_input("the admin password must have at least 8 characters"));
    }
    let hash = hash_password(password)?;
    catalog.set_setting(PASSWORD_SETTING, &hash, true).await
}

/// Whether an admin password is set.
pub async fn has_password(catalog: &Catalog) -> Result<bool> {
    Ok(catalog.get_setting(PASSWORD_SETTING).await?.is_some_and(|h| !h.is_empty()))
}

/// If no admin password is set, set a random one and return it (to be
/// shown once). `None` when a password already exists.
pub async fn ensure_password(catalog: &Catalog) -> Result<Option<String>> {
    if has_password(catalog).await? {
        return Ok(None);
    }
    let password = generate_password();
    set_password(catalog, &password).await?;
    Ok(Some(password))
}

/// Check `password` against the stored hash (false when none is set).
pub async fn verify_password(catalog: &Catalog, password: &str) -> Result<bool> {
    let Some(stored) = catalog.get_setting(PASSWORD_SETTING).await? else { return Ok(false) };
    let password = password.to_owned();
    // argon2 takes tens of milliseconds of CPU: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .is_ok_and(|parsed| argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false);
    Ok(ok)
}

/// Compare without an early exit (CSRF tokens, token hashes).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One browser session.
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    pub authenticated: bool,
    expires: Instant,
}

/// In-memory sessions (a restart logs everyone out).
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Session>>>,
}

impl Sessions {
    /// A new session; returns its id.
    pub fn create(&self, authenticated: bool) -> (String, Session) {
        let id = random_token(32);
        let session = Session { csrf: random_token(24), authenticated, expires: Instant::now() + SESSION_TTL };
        let mut map = self.inner.lock().expect("sessions lock");
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            // Someone is fetching the login page in a loop: drop the
            // sessions that never logged in, keep the real ones.
            map.retain(|_, s| s.authenticated);
        }
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session `id`, its lifetime extended.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.inner.lock().expect("sessions lock");
        let s = map.get_mut(id)?;
        if s.expires <= Instant::now() {
            map.remove(id);
            return None;
        }
        s.expires = Instant::now() + SESSION_TTL;
        Some(s.clone())
    }

    pub fn remove(&self, id: &str) {
        self.inner.lock().expect("sessions lock").remove(id);
    }
}

/// The `Set-Cookie` value for a session id (`None`: clear it).
pub fn session_cookie(id: Option<&str>) -> String {
    match id {
        Some(id) => format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/"),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    }
}

/// The session id from the request's cookies.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == SESSION_COOKIE && !v.is_empty()).then(|| v.to_owned())
    })
}

/// How a request was authenticated (put into request extensions).
#[derive(Debug, Clone)]
pub enum Caller {
    /// A logged-in browser session.
    Session { id: String, csrf: String },
    /// An API token: its name and scope.
    Token { name: String, scope: TokenScope },
}

impl Caller {
    /// The CSRF token to put into forms (empty for token callers).
    pub fn csrf(&self) -> &str {
        match self {
            Caller::Session { csrf, .. } => csrf,
            Caller::Token { .. } => "",
        }
    }
}

/// The scope a request needs: the recording API (`/v1/`) splits into
/// uploads (`ingest`) and reads (`read`); everything else is `admin`.
pub fn needed_scope(method: &Method, path: &str) -> TokenScope {
    if !path.starts_with("/v1/") {
        return TokenScope::Admin;
    }
    match *method {
        Method::GET | Method::HEAD => TokenScope::Read,
        Method::PUT => TokenScope::Ingest,
        _ => TokenScope::Admin,
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn wants_json(req: &Request) -> bool {
    let path = req.uri().path();
    path.starts_with("/api/") || path.starts_with("/v1/") || path == "/metrics"
}

fn refuse(req: &Request, status: StatusCode, kind: &str, message: &str) -> Response {
    if wants_json(req) || status == StatusCode::FORBIDDEN {
        let body = serde_json::json!({"error": {"kind": kind, "message": message}});
        return (status, axum::Json(body)).into_response();
    }
    Redirect::to("/login").into_response()
}

/// Middleware: require a session or a token whose scope covers the
/// request; check CSRF on state changes made with a session.
pub async fn require_auth(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    let caller = if let Some(token) = bearer(req.headers()) {
        let info = match state.catalog.verify_token(token).await {
            Ok(Some(info)) => info,
            Ok(None) => return refuse(&req, StatusCode::UNAUTHORIZED, "auth", "invalid API token"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot check an API token");
                return refuse(&req, StatusCode::SERVICE_UNAVAILABLE, "unavailable", "cannot check the API token now");
            }
        };
        let needed = needed_scope(req.method(), req.uri().path());
        if !info.scope.permits(needed) {
            let message = format!(
                "API token '{}' has scope '{}'; this request needs scope '{needed}' (or admin)",
                info.name, info.scope
            );
            return refuse(&req, StatusCode::FORBIDDEN, "scope", &message);
        }
        Caller::Token { name: info.name, scope: info.scope }
    } else {
        let session = session_id(req.headers()).and_then(|id| state.sessions.get(&id).map(|s| (id, s)));
        match session {
            Some((id, s)) if s.authenticated => Caller::Session { id, csrf: s.csrf },
            _ => {
                let message = "log in or send an API token (Authorization: Bearer)";
                return refuse(&req, StatusCode::UNAUTHORIZED, "auth", message);
            }
        }
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let req = match (&caller, safe) {
        (Caller::Session { csrf, .. }, false) => match check_csrf(req, csrf).await {
            Ok(req) => req,
            Err(resp) => return resp,
        },
        _ => req,
    };
    let mut req = req;
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Pass the request on if it carries the CSRF token (header, or `csrf`
/// field of a url-encoded form, which is buffered and put back).
async fn check_csrf(req: Request, expected: &str) -> std::result::Result<Request, Response> {
    const MESSAGE: &str = "missing or wrong CSRF token; reload the page and try again";
    let json = wants_json(&req);
    let forbidden = move || {
        if json {
            (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({"error": {"kind": "csrf", "message": MESSAGE}})))
                .into_response()
        } else {
            let body = crate::views::page(
                "Refused",
                "",
                "",
                maud::html! { h1 { "Request refused" } div class="flash bad" id="csrf-refused" { "Refused: " (MESSAGE) "." } a href="/modules" { "Back to the Module Manager" } },
            );
            (StatusCode::FORBIDDEN, body).into_response()
        }
    };
    if let Some(h) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return if constant_time_eq(h, expected) { Ok(req) } else { Err(forbidden()) };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(forbidden());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    let fields: Vec<(String, String)> = serde_urlencoded_pairs(&bytes);
    let ok = fields.iter().any(|(k, v)| k == "csrf" && constant_time_eq(v, expected));
    if !ok {
        return Err(forbidden());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Decode `a=b&c=d` (form url-encoding).
pub fn serde_urlencoded_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_page_flood_keeps_logged_in_sessions() {
        let sessions = Sessions::default();
        let (admin, _) = sessions.create(true);
        for _ in 0..MAX_SESSIONS + 5 {
            sessions.create(false);
        }
        assert!(sessions.get(&admin).is_some_and(|s| s.authenticated));
        assert!(sessions.inner.lock().unwrap().len() <= MAX_SESSIONS);
    }

    #[test]
    fn session_cookie_is_httponly_and_strict() {
        let c = session_cookie(Some("abc"));
        assert!(c.starts_with("csal_session=abc;") && c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "other=1; csal_session=abc".parse().unwrap());
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}

/// Wrong passwords allowed in a row before logins are refused for a while.
const FREE_FAILURES: u32 = 5;
/// First lockout; each further failure doubles it, up to [`MAX_LOCKOUT`].
const FIRST_LOCKOUT: Duration = Duration::from_secs(2);
const MAX_LOCKOUT: Duration = Duration::from_secs(300);

/// Slows password guessing against the one admin password: after
/// [`FREE_FAILURES`] wrong passwords in a row, login attempts are refused
/// (429 with Retry-After, the password not even checked) for a lockout that
/// doubles with each further failure, up to five minutes. A correct
/// password resets it. Global rather than per client, since there is one
/// account and sessions are free to create; the short cap bounds how long
/// an attacker can keep the admin out.
#[derive(Clone, Default)]
pub struct LoginThrottle {
    inner: Arc<Mutex<ThrottleState>>,
}

#[derive(Default)]
struct ThrottleState {
    failures: u32,
    locked_until: Option<Instant>,
}

impl LoginThrottle {
    /// `Some(wait)` while logins are locked out at `now`.
    pub fn locked_for(&self, now: Instant) -> Option<Duration> {
        let state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.locked_until.and_then(|until| until.checked_duration_since(now)).filter(|d| !d.is_zero())
    }

    /// A wrong password at `now`.
    pub fn failed(&self, now: Instant) {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.failures = state.failures.saturating_add(1);
        if state.failures >= FREE_FAILURES {
            let doublings = (state.failures - FREE_FAILURES).min(16);
            let lockout = FIRST_LOCKOUT.saturating_mul(1 << doublings).min(MAX_LOCKOUT);
            state.locked_until = Some(now + lockout);
        }
    }

    /// A correct password: back to no lockout.
    pub fn succeeded(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = ThrottleState::default();
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::*;

    #[test]
    fn lockout_starts_after_five_failures_doubles_caps_and_resets() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            t.failed(now);
        }
        assert_eq!(t.locked_for(now), None, "four wrong passwords are free");
        t.failed(now);
        assert_eq!(t.locked_for(now), Some(FIRST_LOCKOUT));
        assert_eq!(t.locked_for(now + FIRST_LOCKOUT), None, "the lockout ends");
        t.failed(now);
        assert_eq!(t.locked_for(now), Some(FIRST_LOCKOUT * 2));
        for _ in 0..40 {
            t.failed(now);
        }
        assert_eq!(t.locked_for(now), Some(MAX_LOCKOUT));
        t.succeeded();
        assert_eq!(t.locked_for(now), None);
    }
}
