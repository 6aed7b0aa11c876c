//! A fake of the two places an Azure workload gets Entra ID (Azure AD)
//! access tokens for Azure Storage, written from Microsoft's public docs:
//! - the identity platform's v2.0 token endpoint, client-credentials grant:
//!   https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
//!   (`POST /{tenant}/oauth2/v2.0/token` with `grant_type=client_credentials`,
//!   `client_id`, `client_secret`, `scope=https://storage.azure.com/.default`;
//!   errors as `{"error": "invalid_client", ...}` with 401, or 400);
//! - the managed identity endpoint of Azure Instance Metadata Service:
//!   https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token
//!   (`GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...`
//!   with `Metadata: true`, optional `client_id` of a user-assigned
//!   identity; `expires_in` and friends are strings; 400 `invalid_request`
//!   "Identity not found").
//!
//! Tokens are JWT-shaped with the claims storage checks (`aud`
//! `https://storage.azure.com`, `iss` `https://sts.windows.net/{tenant}/`,
//! `iat`, `nbf`, `exp`) and a meaningless signature: Azurite's `--oauth
//! basic` checks the claims, not the signature.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::json;

/// The storage audience the tokens are issued for.
pub const STORAGE_AUDIENCE: &str = "https://storage.azure.com";
/// Lifetime the token answers announce.
const LIFETIME_SECS: u64 = 3600;

struct Shared {
    tenant: String,
    client_id: String,
    client_secret: String,
    /// The user-assigned managed identity IMDS knows (besides the
    /// system-assigned one, asked for without `client_id`).
    managed_client_id: String,
    /// How many of the next tokens are issued already expired.
    expired: AtomicU64,
    issued: AtomicU64,
}

/// A running fake on 127.0.0.1; stops when dropped.
pub struct EntraFake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EntraFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EntraFake {
    /// One tenant with one app registration (`client_id`, `client_secret`)
    /// and, for IMDS, a user-assigned identity `managed_client_id`.
    pub async fn start(tenant: &str, client_id: &str, client_secret: &str, managed_client_id: &str) -> Self {
        let shared = Arc::new(Shared {
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            managed_client_id: managed_client_id.to_owned(),
            expired: AtomicU64::new(0),
            issued: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(client_credentials))
            .route("/metadata/identity/oauth2/token", get(managed_identity))
            .with_state(shared.clone());
        let (addr, task) = crate::serve_loopback(app).await;
        EntraFake { addr, shared, task }
    }

    /// The authority host (`https://login.microsoftonline.com` in Azure).
    pub fn authority_host(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The IMDS base (`http://169.254.169.254` in Azure).
    pub fn imds_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Issue the next `count` tokens with an `exp` that has passed while
    /// the answer still announces an hour (as after a clock skew, or a
    /// token revoked early): the storage service refuses them.
    pub fn expire_next_tokens(&self, count: u64) {
        self.shared.expired.store(count, Ordering::SeqCst);
    }

    /// Tokens issued so far, by both endpoints.
    pub fn issued(&self) -> u64 {
        self.shared.issued.load(Ordering::SeqCst)
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// A JWT-shaped token (header.claims.signature, base64url without padding).
fn jwt(shared: &Shared, app_id: &str) -> String {
    let now = now_secs();
    let expired = shared.expired.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let (nbf, exp) = if expired { (now - 7200, now - 3600) } else { (now - 60, now + LIFETIME_SECS) };
    let claims = json!({
        "aud": STORAGE_AUDIENCE,
        "iss": format!("https://sts.windows.net/{}/", shared.tenant),
        "iat": nbf,
        "nbf": nbf,
        "exp": exp,
        "tid": shared.tenant,
        "appid": app_id,
        "oid": app_id,
        "ver": "1.0",
        "jti": format!("{:016x}", fastrand::u64(..)),
    });
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    shared.issued.fetch_add(1, Ordering::SeqCst);
    format!(
        "{}.{}.{}",
        b64(br#"{"typ":"JWT","alg":"RS256","kid":"csal-fake"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"not-a-signature")
    )
}

fn aad_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description, "error_codes": [0]}))).into_response()
}

async fn client_credentials(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if tenant != shared.tenant {
        return aad_error(StatusCode::BAD_REQUEST, "invalid_request", "AADSTS90002: Tenant not found.");
    }
    if field("grant_type") != "client_credentials" {
        return aad_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "AADSTS70003: unsupported grant type.");
    }
    if field("scope") != format!("{STORAGE_AUDIENCE}/.default") {
        return aad_error(StatusCode::BAD_REQUEST, "invalid_scope", "AADSTS70011: The provided scope is not valid.");
    }
    if field("client_id") != shared.client_id {
        return aad_error(StatusCode::BAD_REQUEST, "unauthorized_client", "AADSTS700016: Application not found.");
    }
    if field("client_secret") != shared.client_secret {
        return aad_error(StatusCode::UNAUTHORIZED, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
    }
    let token = jwt(&shared, &shared.client_id);
    Json(json!({
        "token_type": "Bearer",
        "expires_in": LIFETIME_SECS,
        "ext_expires_in": LIFETIME_SECS,
        "access_token": token,
    }))
    .into_response()
}

async fn managed_identity(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return aad_error(StatusCode::BAD_REQUEST, "invalid_request", "Required metadata header not specified");
    }
    if query.get("api-version").is_none_or(|v| v.is_empty()) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let resource = query.get("resource").map(String::as_str).unwrap_or("");
    if resource.trim_end_matches('/') != STORAGE_AUDIENCE {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            "AADSTS500011: The resource principal was not found.",
        );
    }
    let app_id = match query.get("client_id") {
        None => "system-assigned",
        Some(id) if *id == shared.managed_client_id => id.as_str(),
        Some(_) => return aad_error(StatusCode::BAD_REQUEST, "invalid_request", "Identity not found"),
    };
    let token = jwt(&shared, app_id);
    let now = now_secs();
    Json(json!({
        "access_token": token,
        "refresh_token": "",
        "expires_in": LIFETIME_SECS.to_string(),
        "expires_on": (now + LIFETIME_SECS).to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
    }))
    .into_response()
}
