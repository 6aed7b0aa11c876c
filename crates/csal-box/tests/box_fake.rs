//! Box-specific behaviour against the fake Box: single-use refresh tokens,
//! the client-credentials grant, name conflicts that never overwrite,
//! sessions aborted on failure or drop, digests, rate limits.

csal_core::link_providers!(csal_box);

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use csal_box::{BoxConfig, BoxModule};
use csal_core::{ByteStream, ErrorClass, ErrorKind, ExposeSecret, ListRequest, StorageError, StorageModule, WriteMeta};
use csal_fakes::boxapi::{CLIENT_ID, CLIENT_SECRET, ENTERPRISE_ID, FakeBox, REFRESH_TOKEN, USER_ID};
use csal_oauth::{MemoryTokenStore, TokenStore};
use futures::StreamExt;
use serde_json::json;

const PART: usize = 64 * 1024;
const THRESHOLD_KIB: u64 = 128;

fn oauth(fake: &FakeBox, access_token: Option<String>) -> serde_json::Value {
    json!({
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN, "access_token": access_token,
        "session_threshold_kib": THRESHOLD_KIB,
        "api_url": fake.api_url(), "upload_url": fake.upload_url(), "token_url": fake.token_url(),
    })
}

fn module(fake: &FakeBox, config: serde_json::Value, store: Option<Arc<dyn TokenStore>>) -> BoxModule {
    fake.set_session_limits(THRESHOLD_KIB * 1024, PART as u64);
    let config: BoxConfig = serde_json::from_value(config).unwrap();
    BoxModule::new(config, store).unwrap()
}

fn data(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

async fn read_all(module: &BoxModule, id: &str) -> Bytes {
    let body = module.read(id, None).await.unwrap();
    Bytes::from(body.map(|c| c.unwrap().to_vec()).concat().await)
}

/// The only object under `prefix`, read back.
async fn only_object(module: &BoxModule, prefix: &str) -> Bytes {
    let page = module.list(&ListRequest::new(prefix)).await.unwrap();
    assert_eq!(page.objects.len(), 1, "{:?}", page.objects.iter().map(|o| &o.object_id).collect::<Vec<_>>());
    read_all(module, &page.objects[0].object_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refreshed_and_the_single_use_refresh_token_rotates() {
    let fake = FakeBox::start().await;
    let first = fake.issue_access_token();
    let store = Arc::new(MemoryTokenStore::new());
    let module = module(&fake, oauth(&fake, Some(first.clone())), Some(store.clone() as Arc<dyn TokenStore>));
    fake.expire_access_tokens();
    let body = data(3 * PART + 77);
    let receipt = module.write(ByteStream::from_bytes(body.clone()), WriteMeta::new("cam/x.bin")).await.unwrap();
    assert_eq!(fake.file(&receipt.object_id).unwrap(), body);
    assert_eq!(fake.token_requests(), 1);
    let saved = store.latest().expect("refreshed tokens were not stored");
    assert_ne!(saved.access_token.expose_secret(), first);
    let rotated = saved.refresh_token.unwrap();
    assert_ne!(rotated.expose_secret(), REFRESH_TOKEN, "the rotated refresh token was not kept");
    assert!(!fake.refresh_token_valid(REFRESH_TOKEN), "Box refresh tokens are single use");
    assert!(fake.refresh_token_valid(rotated.expose_secret()));
    let left = saved.refresh_token_expires_at.unwrap().duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(59 * 24 * 3600), "refresh token expiry not ~60 days out: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_with_an_expired_token_spend_the_refresh_token_once() {
    let fake = FakeBox::start().await;
    let module = Arc::new(module(&fake, oauth(&fake, Some(fake.issue_access_token())), None));
    fake.expire_access_tokens();
    let calls = (0..8).map(|i| {
        let m = module.clone();
        tokio::spawn(async move { m.stat(&format!("nothing-{i}.bin")).await })
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap().unwrap_err().kind(), ErrorKind::NotFound);
    }
    // A second refresh with the spent token would have been refused.
    assert_eq!(fake.token_requests(), 1);
    assert_eq!(module.token_refreshes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_get_a_token_and_a_new_one_after_expiry() {
    let fake = FakeBox::start().await;
    let ccg = |kind: &str, id: &str| {
        json!({
            "auth_method": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "box_subject_type": kind, "box_subject_id": id,
            "api_url": fake.api_url(), "upload_url": fake.upload_url(), "token_url": fake.token_url(),
        })
    };
    let m = module(&fake, ccg("enterprise", ENTERPRISE_ID), None);
    let r = m.write(ByteStream::from_bytes(data(10)), WriteMeta::new("a.bin")).await.unwrap();
    assert_eq!(fake.token_requests(), 1);
    fake.expire_access_tokens();
    assert_eq!(read_all(&m, &r.object_id).await, data(10));
    assert_eq!(fake.token_requests(), 2, "an expired client-credentials token was not replaced");

    let user = module(&fake, ccg("user", USER_ID), None);
    user.validate().await.unwrap();
    let wrong = module(&fake, ccg("enterprise", "1"), None);
    let e = wrong.validate().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.to_string().contains("client-credentials"), "{e}");
}

#[test]
fn jwt_and_incomplete_client_credentials_are_refused_naming_the_field() {
    let build = |cfg: serde_json::Value| {
        csal_core::find_provider("box")
            .unwrap()
            .build(&csal_core::InstanceContext::new("b", "b", "box"), &cfg)
            .err()
            .expect("refused")
    };
    let e = build(json!({ "auth_method": "jwt", "client_id": "x", "client_secret": "y" }));
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("client_credentials"), "{e}");
    let e = build(json!({ "auth_method": "client_credentials", "client_id": "x", "client_secret": "y" }));
    assert!(e.to_string().contains("box_subject_type"), "{e}");
    let e = build(json!({ "client_id": "x", "client_secret": "y", "refresh_token": "r", "root_folder_id": "../1" }));
    assert!(e.to_string().contains("root_folder_id"), "{e}");
    let e = build(json!({ "client_id": "x", "refresh_token": "r" }));
    assert!(e.to_string().contains("client_secret"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_taken_before_a_direct_upload_is_never_overwritten() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, None), None);
    let theirs = Bytes::from_static(b"written by someone else");
    fake.squat_next_upload(theirs.clone());
    let e = m.write(ByteStream::from_bytes(data(1000)), WriteMeta::new("conflict/a.bin")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(fake.direct_uploads(), 0);
    assert_eq!(fake.file_count(), 1);
    assert_eq!(only_object(&m, "conflict/").await, theirs, "the other writer's file was replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_taken_before_commit_aborts_the_session_and_keeps_the_other_file() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, None), None);
    let theirs = Bytes::from_static(b"the other writer");
    fake.squat_next_commit(theirs.clone());
    let e = m.write(ByteStream::from_bytes(data(4 * PART + 1)), WriteMeta::new("c/big.bin")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(fake.parts(), 5);
    assert_eq!(fake.open_sessions(), 0, "the failed session was not aborted");
    assert_eq!(fake.aborted_sessions(), 1);
    assert_eq!(only_object(&m, "c/").await, theirs, "the other writer's file was replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_failing_mid_session_aborts_it_and_stores_nothing() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, None), None);
    let good: Vec<Result<Bytes, StorageError>> = vec![Ok(data(PART)), Ok(data(PART))];
    let failing = futures::stream::iter(good)
        .chain(futures::stream::once(async { Err(StorageError::transient("camera went away")) }));
    let body = ByteStream::new(failing, Some(5 * PART as u64));
    let e = m.write(body, WriteMeta::new("f/x.bin")).await.unwrap_err();
    assert!(e.to_string().contains("camera went away"), "{e}");
    assert_eq!(fake.parts(), 2);
    assert_eq!(fake.open_sessions(), 0);
    assert_eq!(fake.aborted_sessions(), 1);
    assert_eq!(fake.file_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_upload_aborts_its_session() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, None), None);
    let (reached, mut stalled) = tokio::sync::mpsc::channel::<()>(1);
    let good: Vec<Result<Bytes, StorageError>> = vec![Ok(data(PART)), Ok(data(PART))];
    let stalling = futures::stream::iter(good).chain(futures::stream::once(async move {
        let _ = reached.send(()).await;
        futures::future::pending::<Result<Bytes, StorageError>>().await
    }));
    let body = ByteStream::new(stalling, Some(5 * PART as u64));
    let write = m.write(body, WriteMeta::new("d/x.bin"));
    tokio::select! {
        r = write => panic!("the write finished: {:?}", r.map(|r| r.object_id)),
        _ = stalled.recv() => {} // both parts sent, the body stalls: drop the upload
    }
    assert_eq!(fake.parts(), 2);
    assert!(fake.wait_for_no_sessions(Duration::from_secs(10)).await, "the dropped session was not aborted");
    assert_eq!(fake.aborted_sessions(), 1);
    assert_eq!(fake.file_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_corrupted_in_transit_fails_its_digest_and_the_session_is_aborted() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, None), None);
    fake.corrupt_next_parts(1);
    let e = m.write(ByteStream::from_bytes(data(3 * PART)), WriteMeta::new("z/x.bin")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert_eq!(fake.open_sessions(), 0);
    assert_eq!(fake.file_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_429_is_classified_with_retry_after() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, Some(fake.issue_access_token())), None);
    fake.inject_rate_limit(1, 7);
    let e = m.stat("a.bin").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(fake.throttled(), 1);
    assert_eq!(m.stat("a.bin").await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_answered_202_is_tried_again_until_the_file_exists() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, None), None);
    fake.delay_commits(2);
    let body = data(2 * PART + 5);
    let r = m.write(ByteStream::from_bytes(body.clone()), WriteMeta::new("p/x.bin")).await.unwrap();
    assert_eq!(fake.commits(), 1);
    assert_eq!(read_all(&m, &r.object_id).await, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_below_the_threshold_are_one_direct_upload_and_unknown_sizes_above_it_a_session() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, None), None);
    let small = data(THRESHOLD_KIB as usize * 1024 - 1);
    let r = m.write(ByteStream::from_bytes(small.clone()), WriteMeta::new("s.bin")).await.unwrap();
    assert_eq!((fake.direct_uploads(), fake.sessions_created()), (1, 0));
    assert_eq!(r.checksum.unwrap().value, sha1_hex(&small));

    let big = data(5 * PART + 1234);
    let chunks: Vec<Result<Bytes, StorageError>> = big.chunks(10_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let r = m.write(ByteStream::new(futures::stream::iter(chunks), None), WriteMeta::new("u.bin")).await.unwrap();
    assert_eq!(r.size, big.len() as u64);
    assert_eq!((fake.sessions_created(), fake.parts()), (1, 6), "5 full parts and a tail");
    assert_eq!(read_all(&m, &r.object_id).await, big);
    let meta = m.stat(&r.object_id).await.unwrap();
    assert_eq!(meta.checksum.unwrap().value, sha1_hex(&big));
}

fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest as _;
    hex::encode(sha1::Sha1::digest(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_into_a_new_folder_share_it() {
    let fake = FakeBox::start().await;
    let m = Arc::new(module(&fake, oauth(&fake, None), None));
    let writes = (0..8).map(|i| {
        let m = m.clone();
        tokio::spawn(
            async move { m.write(ByteStream::from_bytes(data(100 + i)), WriteMeta::new("new/dir/x.bin")).await },
        )
    });
    for w in futures::future::join_all(writes).await {
        w.unwrap().unwrap();
    }
    let mut request = ListRequest::new("new/");
    let mut ids = Vec::new();
    loop {
        let page = m.list(&request).await.unwrap();
        ids.extend(page.objects.into_iter().map(|o| o.object_id));
        match page.next_page {
            Some(token) => request.continuation = Some(token),
            None => break,
        }
    }
    assert_eq!(ids.len(), 8);
    assert!(ids.iter().all(|id| id.starts_with("new/dir/x-")), "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_through_markers() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, None), None);
    for i in 0..7 {
        m.write(ByteStream::from_bytes(data(i)), WriteMeta::new("l/x.bin")).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut request = ListRequest::new("l/");
    request.limit = Some(3);
    loop {
        let page = m.list(&request).await.unwrap();
        assert!(page.objects.len() <= 3);
        seen.extend(page.objects.into_iter().map(|o| o.object_id));
        match page.next_page {
            Some(token) => request.continuation = Some(token),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_deleted_in_box_meanwhile_is_created_again_on_the_next_write() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, None), None);
    m.write(ByteStream::from_bytes(data(10)), WriteMeta::new("cam/day/a.bin")).await.unwrap();
    assert!(fake.delete_folder("cam"));
    let small = m.write(ByteStream::from_bytes(data(20)), WriteMeta::new("cam/day/b.bin")).await.unwrap();
    assert_eq!(read_all(&m, &small.object_id).await, data(20));
    assert!(fake.delete_folder("cam"));
    let big = m.write(ByteStream::from_bytes(data(3 * PART)), WriteMeta::new("cam/day/c.bin")).await.unwrap();
    assert_eq!(read_all(&m, &big.object_id).await, data(3 * PART));
    assert_eq!(fake.file_count(), 1);
    assert_eq!(m.stat(&small.object_id).await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_users_space_left_and_degrades_when_nearly_full() {
    use csal_core::HealthStatus;
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, Some(fake.issue_access_token())), None);
    fake.set_space(1_000_000, 300_000);
    m.write(ByteStream::from_bytes(data(40_000)), WriteMeta::new("cam/q.bin")).await.unwrap();
    let report = m.health_check().await;
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), Some(660_000), "{report:?}");
    assert_eq!(report.details[csal_http::QUOTA_USED_BYTES], 340_000);

    fake.set_space(1_000_000, 900_000);
    let report = m.health_check().await;
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
    assert_eq!(report.free_bytes(), Some(60_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_box_space_reports_no_free_bytes() {
    let fake = FakeBox::start().await;
    let m = module(&fake, oauth(&fake, Some(fake.issue_access_token())), None);
    for amount in [-1, 999_999_999_999_999] {
        fake.set_space(amount, 123);
        let report = m.health_check().await;
        assert_eq!(report.free_bytes(), None, "space_amount {amount}: {report:?}");
        assert_eq!(report.details[csal_http::QUOTA_USED_BYTES], 123);
    }
}
