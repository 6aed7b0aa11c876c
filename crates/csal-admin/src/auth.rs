//! Who may use the admin UI and API: an argon2-hashed admin password, API
//! tokens stored as SHA-256 hashes, sessions in the catalog (shared by every
//! node, kept across restarts) with a CSRF token each.
//!
//! - Browser: `POST /login` with the password sets an HttpOnly,
//!   SameSite=Strict session cookie (`Secure` when the public URL is
//!   https). Every state-changing request made with that cookie must carry
//!   the session's CSRF token (form field `csrf` or header `X-CSRF-Token`).
//!   A session ends after [`SESSION_TTL`] unused or [`SESSION_MAX_AGE`]
//!   after login, whichever comes first, and `csal admin set-password` ends
//!   every session.
//! - Scripts and recorders: `Authorization: Bearer <token>`; tokens are
//!   created with `csal admin create-token NAME --scope S` and shown once
//!   (stored in the catalog, see `csal_catalog::TokenScope`). No CSRF check
//!   (no cookie). A token's scope decides what it reaches ([`needed_scope`]):
//!   `ingest` only the `PUT`s of `/v1/`, `read` only the `GET`s and `HEAD`s
//!   of `/v1/`, `admin` everything. A browser session is `admin`.

use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use csal_catalog::{Catalog, SessionLimits, TokenScope};
use csal_core::{Result, StorageError};

use crate::AdminState;

/// Settings key of the admin password's argon2 hash (PHC string).
pub const PASSWORD_SETTING: &str = "admin.password_hash";
/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "csal_session";
/// How long an idle session lives.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long a logged-in session lives at most, however busy.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// How long a login page's (not logged-in) session lives.
const LOGIN_PAGE_TTL: Duration = Duration::from_secs(3600);
/// Sessions that never logged in kept at most (older ones are dropped).
const MAX_SESSIONS: u64 = 10_000;
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

fn check_password_rules(password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(StorageError::invalid_input("the admin password must have at least 8 characters"));
    }
    Ok(())
}

/// Store `password` (argon2) as the admin password and end every session
/// on every node (whoever knew the old password is logged out).
pub async fn set_password(catalog: &Catalog, password: &str) -> Result<()> {
    check_password_rules(password)?;
    let hash = hash_password(password)?;
    catalog.set_setting(PASSWORD_SETTING, &hash, true).await?;
    // After the new hash is stored: a login that checked the old password
    // meanwhile gets a session of the old epoch, which is never valid.
    catalog.end_sessions().await.map_err(|e| {
        StorageError::new(
            e.kind(),
            format!("the password was changed but the existing sessions could not be ended: {}", e.message()),
        )
    })
}

/// Whether an admin password is set.
pub async fn has_password(catalog: &Catalog) -> Result<bool> {
    Ok(catalog.get_setting(PASSWORD_SETTING).await?.is_some_and(|h| !h.is_empty()))
}

/// If no admin password is set, set a random one and return it (to be
/// shown once). `None` when a password already exists, including when
/// another node starting on the same empty catalog set it first.
pub async fn ensure_password(catalog: &Catalog) -> Result<Option<String>> {
    if has_password(catalog).await? {
        return Ok(None);
    }
    let password = generate_password();
    let hash = hash_password(&password)?;
    Ok(catalog.set_setting_if_absent(PASSWORD_SETTING, &hash, true).await?.then_some(password))
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
    /// The token its forms must carry.
    pub csrf: String,
    /// Logged in (else only the login form may be posted).
    pub authenticated: bool,
}

/// The sessions, kept in the catalog (see [`csal_catalog::SessionLimits`]).
#[derive(Clone)]
pub struct Sessions {
    catalog: Catalog,
}

fn limits(authenticated: bool) -> SessionLimits {
    let (idle, absolute) =
        if authenticated { (SESSION_TTL, SESSION_MAX_AGE) } else { (LOGIN_PAGE_TTL, LOGIN_PAGE_TTL) };
    SessionLimits { idle, absolute, max_unauthenticated: MAX_SESSIONS }
}

impl Sessions {
    /// Sessions kept in `catalog`.
    pub fn new(catalog: Catalog) -> Self {
        Sessions { catalog }
    }

    /// A new session; returns its id. A logged-in one is created with the
    /// session epoch read before its password was checked (see
    /// [`Catalog::session_epoch`]); `None` reads the current one.
    pub async fn create(&self, authenticated: bool, epoch: Option<i64>) -> Result<(String, Session)> {
        let epoch = match epoch {
            Some(e) => e,
            None => self.catalog.session_epoch().await?,
        };
        let (id, rec) = self.catalog.create_session(authenticated, epoch, &limits(authenticated)).await?;
        Ok((id, Session { csrf: rec.csrf, authenticated: rec.authenticated }))
    }

    /// The live session `id` (idle clock restarted); `None` when unknown,
    /// expired or ended, or when the catalog cannot be read (logged).
    pub async fn get(&self, id: &str) -> Option<Session> {
        // A logged-in session's idle limit is the longer one; a pre-login
        // session's absolute end is set at creation.
        match self.catalog.session(id, &limits(true)).await {
            Ok(rec) => rec.map(|r| Session { csrf: r.csrf, authenticated: r.authenticated }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the session from the catalog");
                None
            }
        }
    }

    /// End one session (log out).
    pub async fn remove(&self, id: &str) {
        if let Err(e) = self.catalog.delete_session(id).await {
            tracing::warn!(error = %e, "cannot delete the session from the catalog");
        }
    }
}

/// The `Set-Cookie` value for a session id (`None`: clear it); `secure`
/// when browsers reach the admin over https.
pub fn session_cookie(id: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match id {
        Some(id) => format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}"),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
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
    Session {
        /// The session id (from the cookie).
        id: String,
        /// Its CSRF token.
        csrf: String,
    },
    /// An API token: its name and scope.
    Token {
        /// The token's name.
        name: String,
        /// What it may do.
        scope: TokenScope,
    },
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
        let session = match session_id(req.headers()) {
            Some(id) => state.sessions.get(&id).await.map(|s| (id, s)),
            None => None,
        };
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
    fn session_cookie_is_httponly_and_strict_and_secure_over_https() {
        let c = session_cookie(Some("abc"), false);
        assert!(c.starts_with("csal_session=abc;") && c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(!c.contains("Secure"));
        assert!(session_cookie(Some("abc"), true).ends_with("; Secure"));
        assert!(session_cookie(None, true).contains("Max-Age=0") && session_cookie(None, true).contains("Secure"));
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
