//! Dropbox-specific behaviour against the fake: token expiry mid-upload,
//! single-flight refresh, rate limits, revoked consent, upload-session rules.

csal_core::link_providers!(csal_dropbox);

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use csal_core::{ByteStream, ErrorClass, ErrorKind, ExposeSecret, HealthStatus, StorageModule, WriteMeta};
use csal_dropbox::{DropboxConfig, DropboxModule};
use csal_fakes::dropbox::{APP_KEY, APP_SECRET, CHUNK_UNIT, FakeDropbox, REFRESH_TOKEN};
use csal_oauth::{MemoryTokenStore, TokenStore};
use futures::StreamExt;
use serde_json::json;

fn config(fake: &FakeDropbox, access_token: Option<String>) -> DropboxConfig {
    serde_json::from_value(json!({
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "access_token": access_token,
        "root_path": "/csal",
        "chunk_size_mb": 4,
        "api_url": fake.base_url(),
        "content_url": fake.base_url(),
        "token_url": fake.token_url(),
    }))
    .unwrap()
}

fn data(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

async fn read_all(module: &DropboxModule, id: &str) -> Bytes {
    module.read(id, None).await.unwrap().collect_limited(64 << 20).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiring_mid_upload_is_refreshed_and_the_upload_completes() {
    let fake = FakeDropbox::start().await;
    let first_token = fake.issue_access_token();
    let store = Arc::new(MemoryTokenStore::new());
    let module =
        DropboxModule::new(config(&fake, Some(first_token.clone())), Some(store.clone() as Arc<dyn TokenStore>))
            .unwrap();
    // start (1 call) and the first append (2) succeed, then the token expires.
    fake.expire_access_tokens_after(2);
    let body = data(4 * CHUNK_UNIT + 1000);
    let receipt = module.write(ByteStream::from_bytes(body.clone()), WriteMeta::new("cam/big.bin")).await.unwrap();

    assert_eq!(receipt.size, body.len() as u64);
    assert_eq!(fake.expired_rejections(), 1, "the token never expired mid-upload");
    assert_eq!(fake.token_requests(), 1, "expected exactly one refresh");
    assert_eq!(fake.appends(), 3, "start + 3 appends + finish for 4 chunks and a tail");
    assert_eq!(fake.file(&format!("/csal/{}", receipt.object_id)).unwrap(), body);
    assert_eq!(fake.open_sessions(), 0);
    // The refreshed token reached the store, and it is not the expired one.
    assert_eq!(store.save_count(), 1);
    let saved = store.latest().unwrap();
    assert_ne!(saved.access_token.expose_secret(), first_token);
    assert_eq!(saved.refresh_token.unwrap().expose_secret(), REFRESH_TOKEN);
    assert!(saved.expires_at.is_some());
    assert_eq!(read_all(&module, &receipt.object_id).await, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_after_expiry_share_one_refresh() {
    let fake = FakeDropbox::start().await;
    let module = Arc::new(DropboxModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap());
    let receipt = module.write(ByteStream::from_bytes(data(10)), WriteMeta::new("a.bin")).await.unwrap();
    fake.expire_access_tokens();
    let tasks = (0..24).map(|_| {
        let module = module.clone();
        let id = receipt.object_id.clone();
        tokio::spawn(async move { module.stat(&id).await.map(|m| m.size) })
    });
    for r in futures::future::join_all(tasks).await {
        assert_eq!(r.unwrap().unwrap(), 10);
    }
    assert_eq!(fake.token_requests(), 1, "refresh was not single-flight");
    assert_eq!(module.token_refreshes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_transient_with_retry_after() {
    let fake = FakeDropbox::start().await;
    let module = DropboxModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.inject_rate_limit(1, 3);
    let err = module.stat("some/file.bin").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(fake.rate_limited(), 1);
    // The next call goes through (and the object is simply missing).
    assert_eq!(module.stat("some/file.bin").await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_refresh_token_is_auth_and_health_is_degraded() {
    let fake = FakeDropbox::start().await;
    let module = DropboxModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.revoke_refresh_token();
    fake.expire_access_tokens();
    let err = module.write(ByteStream::from_bytes(data(10)), WriteMeta::new("x.bin")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert!(err.to_string().contains("re-authorise"), "{err}");
    assert!(!err.to_string().contains(REFRESH_TOKEN), "{err}");
    let health = module.health_check().await;
    assert_eq!(health.status, HealthStatus::Degraded);
    assert!(health.last_error.unwrap().contains("refresh"));
    assert_eq!(fake.file_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_refuses_a_folder_and_keeps_its_files() {
    let fake = FakeDropbox::start().await;
    let module = DropboxModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    let r = module.write(ByteStream::from_bytes(data(5)), WriteMeta::new("keep/one.bin")).await.unwrap();
    let err = module.delete("keep").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(read_all(&module, &r.object_id).await, data(5));
}

// ---- the fake's protocol rules, seen on the wire

async fn call(fake: &FakeDropbox, token: &str, endpoint: &str, arg: serde_json::Value, body: Bytes) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}/2/{endpoint}", fake.base_url()))
        .bearer_auth(token)
        .header("Dropbox-API-Arg", arg.to_string())
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_refuses_overwrite_in_add_mode_with_a_conflict_error() {
    let fake = FakeDropbox::start().await;
    let t = fake.issue_access_token();
    let arg = json!({"path": "/x/a.bin", "mode": "add", "autorename": false});
    assert_eq!(call(&fake, &t, "files/upload", arg.clone(), data(3)).await.0, 200);
    let (status, body) = call(&fake, &t, "files/upload", arg, data(4)).await;
    assert_eq!(status, 409);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v["error_summary"].as_str().unwrap().starts_with("path/conflict/file"), "{body}");
    assert_eq!(v["error"]["reason"][".tag"], "conflict");
    assert_eq!(fake.file("/x/a.bin").unwrap(), data(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_enforces_session_offsets_and_chunk_sizes() {
    let fake = FakeDropbox::start().await;
    let t = fake.issue_access_token();
    let (_, body) = call(&fake, &t, "files/upload_session/start", json!({"close": false}), data(CHUNK_UNIT)).await;
    let sid = serde_json::from_str::<serde_json::Value>(&body).unwrap()["session_id"].as_str().unwrap().to_owned();
    // Wrong offset: incorrect_offset with the correct one.
    let arg = json!({"cursor": {"session_id": sid, "offset": 5}, "close": false});
    let (status, body) = call(&fake, &t, "files/upload_session/append_v2", arg, data(CHUNK_UNIT)).await;
    assert_eq!(status, 409);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"][".tag"], "incorrect_offset", "{body}");
    assert_eq!(v["error"]["correct_offset"], CHUNK_UNIT);
    // A non-final append that is not a multiple of 4 MiB is refused.
    let arg = json!({"cursor": {"session_id": sid, "offset": CHUNK_UNIT}, "close": false});
    let (status, _) = call(&fake, &t, "files/upload_session/append_v2", arg, data(1000)).await;
    assert_eq!(status, 409);
    // An expired token gets the documented 401 body.
    fake.expire_access_tokens();
    let (status, body) = call(&fake, &t, "files/upload", json!({"path": "/y"}), data(1)).await;
    assert_eq!(status, 401);
    assert!(body.contains("expired_access_token"), "{body}");
}

/// Bounded memory: the upload never pulls more than two chunks (plus one
/// source chunk) ahead of what the server has received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_pulls_at_most_two_chunks_ahead_of_the_server() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let fake = Arc::new(FakeDropbox::start().await);
    let module = DropboxModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    const PIECE: usize = 64 * 1024;
    let pieces = 10 * CHUNK_UNIT / PIECE + 3;
    let max_ahead = Arc::new(AtomicU64::new(0));
    let (f, m) = (fake.clone(), max_ahead.clone());
    let stream = futures::stream::iter(0..pieces).map(move |i| {
        let produced = ((i + 1) * PIECE) as u64;
        m.fetch_max(produced.saturating_sub(f.bytes_received()), Ordering::Relaxed);
        Ok(Bytes::from(vec![(i % 256) as u8; PIECE]))
    });
    let receipt = module.write(ByteStream::new(stream, None), WriteMeta::new("stream.bin")).await.unwrap();
    assert_eq!(receipt.size, (pieces * PIECE) as u64);
    let ahead = max_ahead.load(Ordering::Relaxed);
    assert!(ahead <= (2 * CHUNK_UNIT + PIECE) as u64, "pulled {ahead} bytes ahead of the server");
    assert!(ahead >= CHUNK_UNIT as u64, "the check measured nothing");
}

/// dropbox-sdk escapes a character above U+FFFF in `Dropbox-API-Arg` as one
/// five-digit `\u1d49c`, which JSON reads as U+1D49 followed by "c"; the
/// client sends the proper surrogate pair instead, so the file lands at the
/// path we asked for and reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_above_the_bmp_reach_dropbox_unchanged() {
    let fake = FakeDropbox::start().await;
    let module = DropboxModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    let small = module.write(ByteStream::from_bytes(data(10)), WriteMeta::new("cam/𝒜𝒷.bin")).await.unwrap();
    assert!(small.object_id.contains("𝒜𝒷"), "{}", small.object_id);
    assert_eq!(fake.file(&format!("/csal/{}", small.object_id)).unwrap(), data(10));
    let big_body = data(CHUNK_UNIT + 5);
    let big = module.write(ByteStream::from_bytes(big_body.clone()), WriteMeta::new("cam/𝒜big.bin")).await.unwrap();
    assert_eq!(fake.file(&format!("/csal/{}", big.object_id)).unwrap(), big_body);
    assert_eq!(read_all(&module, &small.object_id).await, data(10));
    let part = module.read(&big.object_id, Some(csal_core::ByteRange::inclusive(3, 9))).await.unwrap();
    assert_eq!(part.collect_limited(100).await.unwrap(), big_body.slice(3..10));
    module.delete(&small.object_id).await.unwrap();
    assert!(fake.file(&format!("/csal/{}", small.object_id)).is_none());
}

/// The HTTP client dropbox-sdk runs on has our timeouts: a server that
/// accepts the connection and never answers fails the call with Timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn); // keep it open, say nothing
        }
    });
    let config: DropboxConfig = serde_json::from_value(json!({
        "app_key": APP_KEY, "refresh_token": REFRESH_TOKEN, "access_token": "some-token",
        "api_url": url, "content_url": url, "timeout_secs": 1,
    }))
    .unwrap();
    let module = DropboxModule::new(config, None).unwrap();
    let started = std::time::Instant::now();
    let err = module.stat("a.bin").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_individual_space_left_and_degrades_when_nearly_full() {
    let fake = FakeDropbox::start().await;
    let module = DropboxModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.set_space(1_000_000, 100_000);
    module.write(ByteStream::from_bytes(data(20_000)), WriteMeta::new("cam/q.bin")).await.unwrap();
    let report = module.health_check().await;
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), Some(880_000), "{report:?}");
    assert_eq!(report.details[csal_http::QUOTA_TOTAL_BYTES], 1_000_000);

    fake.set_space(1_000_000, 930_000);
    let report = module.health_check().await;
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
    assert_eq!(report.free_bytes(), Some(50_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_space_is_narrowed_to_the_members_own_limit() {
    let fake = FakeDropbox::start().await;
    let module = DropboxModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    module.write(ByteStream::from_bytes(data(10_000)), WriteMeta::new("cam/q.bin")).await.unwrap();
    // The team has plenty left; no member limit: the team's space counts.
    fake.set_team_space(10_000_000, 1_000_000, 0);
    assert_eq!(module.health_check().await.free_bytes(), Some(8_990_000));
    // A member limit of 50,000 leaves this member 40,000.
    fake.set_team_space(10_000_000, 1_000_000, 50_000);
    assert_eq!(module.health_check().await.free_bytes(), Some(40_000));
    // A nearly full team leaves less than the member limit would.
    fake.set_team_space(10_000_000, 9_980_000, 50_000);
    let report = module.health_check().await;
    assert_eq!(report.free_bytes(), Some(10_000));
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
}
