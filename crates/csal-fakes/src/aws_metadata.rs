//! A fake of the two AWS credential endpoints a workload calls for its
//! role's temporary credentials, written from the public docs:
//! - EC2 instance metadata, IMDSv2:
//!   https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html
//!   (`PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds`,
//!   then requests with `X-aws-ec2-metadata-token`) and
//!   https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html
//!   (`GET /latest/meta-data/iam/security-credentials/` lists the role,
//!   `.../{role}` returns `Code`, `AccessKeyId`, `SecretAccessKey`,
//!   `Token`, `Expiration`);
//! - ECS container credentials:
//!   https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
//!   (the URI in `AWS_CONTAINER_CREDENTIALS_FULL_URI`, the
//!   `Authorization` header from `AWS_CONTAINER_AUTHORIZATION_TOKEN`; the
//!   answer has `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`).
//!
//! Both hand out the key pair the test gives; one server serves both.
//! Simplification: the expiry is fixed far in the future (no refresh).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::json;

/// The role name IMDS lists.
pub const ROLE: &str = "csal-test-role";
/// Path of the container credentials endpoint (for `AWS_CONTAINER_CREDENTIALS_FULL_URI`).
pub const ECS_PATH: &str = "/v2/credentials/csal-test";
/// The session token of the temporary credentials (both endpoints send one).
pub const SESSION_TOKEN: &str = "fake-aws-session-token";
const SESSION_TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const EXPIRATION: &str = "2100-01-01T00:00:00Z";

struct Keys {
    access_key: String,
    secret_key: String,
}

struct Shared {
    keys: Mutex<Keys>,
    imds_token: String,
    ecs_authorization: String,
    served: AtomicU64,
}

/// A running fake on 127.0.0.1; stops when dropped.
pub struct AwsMetadataFake {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AwsMetadataFake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AwsMetadataFake {
    /// Serves `access_key` / `secret_key` with [`SESSION_TOKEN`] to IMDSv2
    /// clients and to container clients that send `ecs_authorization`.
    pub async fn start(access_key: &str, secret_key: &str, ecs_authorization: &str) -> Self {
        let shared = Arc::new(Shared {
            keys: Mutex::new(Keys { access_key: access_key.to_owned(), secret_key: secret_key.to_owned() }),
            imds_token: format!("imds-session-{}", fastrand::u64(..)),
            ecs_authorization: ecs_authorization.to_owned(),
            served: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/latest/api/token", put(imds_token))
            .route("/latest/meta-data/iam/security-credentials/", get(imds_roles))
            .route("/latest/meta-data/iam/security-credentials/{role}", get(imds_credentials))
            .route(ECS_PATH, get(ecs_credentials))
            .with_state(shared.clone());
        let (addr, task) = crate::serve_loopback(app).await;
        AwsMetadataFake { addr, shared, task }
    }

    /// The IMDS endpoint (for `ec2_metadata_service_endpoint`).
    pub fn imds_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The container credentials URI (for `AWS_CONTAINER_CREDENTIALS_FULL_URI`).
    pub fn ecs_uri(&self) -> String {
        format!("http://{}{ECS_PATH}", self.addr)
    }

    /// Credentials handed out so far (by either endpoint).
    pub fn served(&self) -> u64 {
        self.shared.served.load(Ordering::SeqCst)
    }
}

fn credentials_json(shared: &Shared) -> serde_json::Value {
    shared.served.fetch_add(1, Ordering::SeqCst);
    let keys = shared.keys.lock().unwrap();
    json!({
        "Code": "Success",
        "LastUpdated": "2026-01-01T00:00:00Z",
        "Type": "AWS-HMAC",
        "AccessKeyId": keys.access_key,
        "SecretAccessKey": keys.secret_key,
        "Token": SESSION_TOKEN,
        "Expiration": EXPIRATION,
        "RoleArn": format!("arn:aws:iam::123456789012:role/{ROLE}"),
    })
}

/// IMDSv2 session token; the TTL header is required (400 without it).
async fn imds_token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match headers.get("x-aws-ec2-metadata-token-ttl-seconds").and_then(|v| v.to_str().ok()) {
        Some(ttl) if ttl.parse::<u32>().is_ok_and(|t| (1..=21_600).contains(&t)) => {
            ([("x-aws-ec2-metadata-token-ttl-seconds", ttl.to_owned())], shared.imds_token.clone()).into_response()
        }
        _ => StatusCode::BAD_REQUEST.into_response(),
    }
}

fn imds_authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    headers.get(SESSION_TOKEN_HEADER).is_some_and(|v| v.as_bytes() == shared.imds_token.as_bytes())
}

async fn imds_roles(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if !imds_authorized(&shared, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    ROLE.into_response()
}

async fn imds_credentials(State(shared): State<Arc<Shared>>, Path(role): Path<String>, headers: HeaderMap) -> Response {
    if !imds_authorized(&shared, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if role != ROLE {
        return StatusCode::NOT_FOUND.into_response();
    }
    axum::Json(credentials_json(&shared)).into_response()
}

async fn ecs_credentials(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let sent = headers.get("authorization").map(|v| v.as_bytes());
    if sent != Some(shared.ecs_authorization.as_bytes()) {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"code": "AccessDenied"}))).into_response();
    }
    axum::Json(credentials_json(&shared)).into_response()
}
