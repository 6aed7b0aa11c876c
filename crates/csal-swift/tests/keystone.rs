//! Keystone v3 auth end to end: a small local fake of Keystone's
//! `POST /v3/auth/tokens` (password method, project scope; Identity API v3
//! reference, "Password authentication with scoped authorization") hands out
//! tokens that are really TempAuth tokens of the Swift all-in-one, with a
//! catalog whose `object-store` endpoint is that Swift's storage URL. So
//! the provider's v3 request, catalog selection, token use and 401 refresh
//! all meet a real Swift.

csal_core::link_providers!(csal_swift);

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use csal_conformance::require_env;
use csal_core::{ByteStream, ErrorKind, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
use serde_json::{Value, json};

struct Fake {
    swift_auth: String,
    user: String,
    key: String,
    logins: AtomicUsize,
    /// The first N logins hand out a token Swift will refuse.
    stale_first: usize,
}

async fn tokens(State(f): State<Arc<Fake>>, body: axum::body::Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let user = &req["auth"]["identity"]["password"]["user"];
    let ok = req["auth"]["identity"]["methods"] == json!(["password"])
        && user["name"] == "cam-user"
        && user["domain"]["name"] == "Default"
        && user["password"] == "cam-password"
        && req["auth"]["scope"]["project"]["name"] == "video";
    if !ok {
        return (StatusCode::UNAUTHORIZED, "{\"error\":{\"code\":401}}").into_response();
    }
    let n = f.logins.fetch_add(1, Ordering::SeqCst);
    let resp = reqwest::Client::new()
        .get(&f.swift_auth)
        .header("X-Auth-User", &f.user)
        .header("X-Auth-Key", &f.key)
        .send()
        .await
        .expect("tempauth");
    let token = if n < f.stale_first {
        "AUTH_tkstale".to_owned()
    } else {
        resp.headers()["x-auth-token"].to_str().unwrap().to_owned()
    };
    let storage = resp.headers()["x-storage-url"].to_str().unwrap().to_owned();
    let doc = json!({ "token": {
        "expires_at": "2999-01-01T00:00:00.000000Z",
        "catalog": [
            { "type": "identity", "endpoints": [{ "interface": "public", "region_id": "RegionOne", "url": "http://nowhere" }] },
            { "type": "object-store", "endpoints": [
                { "interface": "internal", "region_id": "RegionOne", "url": "http://127.0.0.1:1/v1/wrong" },
                { "interface": "public", "region_id": "RegionTwo", "url": "http://127.0.0.1:1/v1/wrong" },
                { "interface": "public", "region_id": "RegionOne", "url": storage } ] } ] } });
    ([("X-Subject-Token", token)], axum::Json(doc)).into_response()
}

async fn start(stale_first: usize) -> Option<(String, Arc<Fake>, tokio::task::JoinHandle<()>)> {
    let swift_auth = require_env("CSAL_TEST_SWIFT_AUTH_URL", "swift-keystone", "swift")?;
    let user = require_env("CSAL_TEST_SWIFT_USER", "swift-keystone", "swift")?;
    let key = require_env("CSAL_TEST_SWIFT_KEY", "swift-keystone", "swift")?;
    let fake = Arc::new(Fake { swift_auth, user, key, logins: AtomicUsize::new(0), stale_first });
    let app = axum::Router::new().route("/v3/auth/tokens", axum::routing::post(tokens)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v3", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Some((url, fake, task))
}

fn module(auth_url: &str, password: &str) -> Arc<csal_core::LayeredModule> {
    let config = json!({
        "auth_url": auth_url, "username": "cam-user", "password": password, "project_name": "video",
        "region": "RegionOne", "container": "csal-keystone",
    });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("ks", "swift", config)]);
    router.module("ks").expect("loads")
}

#[tokio::test(flavor = "multi_thread")]
async fn keystone_v3_token_and_catalog_endpoint_are_used() {
    let Some((url, fake, task)) = start(0).await else { return };
    let m = module(&url, "cam-password");
    let r = m.write(ByteStream::from_bytes(&b"via keystone"[..]), WriteMeta::new("ks.txt")).await.unwrap();
    let back = m.read(&r.object_id, None).await.unwrap().collect_limited(100).await.unwrap();
    assert_eq!(&back[..], b"via keystone");
    m.delete(&r.object_id).await.unwrap();
    assert_eq!(fake.logins.load(Ordering::SeqCst), 1, "the token is cached");
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_is_replaced_once_by_a_single_login() {
    let Some((url, fake, task)) = start(1).await else { return };
    let m = module(&url, "cam-password");
    // The first token is refused (401): the provider logs in again and retries.
    m.validate().await.unwrap();
    assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    // Concurrent callers share the cached token: no further logins.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.health_check().await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().status, csal_core::HealthStatus::Ok);
    }
    assert_eq!(fake.logins.load(Ordering::SeqCst), 2);
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_keystone_password_is_an_auth_error() {
    let Some((url, _fake, task)) = start(0).await else { return };
    let m = module(&url, "not-the-password");
    let e = m.write(ByteStream::from_bytes(&b"x"[..]), WriteMeta::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(!e.to_string().contains("not-the-password"));
    task.abort();
}
