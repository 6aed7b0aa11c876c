//! OneDrive-specific behaviour against the fake Graph: refresh with a
//! rotated refresh token persisted, throttling, revoked consent, fragments.

csal_core::link_providers!(csal_onedrive);

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use csal_core::{ByteStream, ErrorClass, ErrorKind, ExposeSecret, HealthStatus, StorageModule, WriteMeta};
use csal_fakes::onedrive::{CLIENT_ID, CLIENT_SECRET, FRAGMENT_UNIT, FakeOneDrive, REFRESH_TOKEN};
use csal_oauth::{MemoryTokenStore, TokenStore};
use csal_onedrive::{OneDriveConfig, OneDriveModule};
use futures::StreamExt;
use serde_json::json;

fn config(fake: &FakeOneDrive, access_token: Option<String>) -> OneDriveConfig {
    serde_json::from_value(json!({
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "access_token": access_token,
        "root_path": "/csal",
        "chunk_size_kib": 640,
        "graph_url": fake.graph_url(),
        "token_url": fake.token_url(),
    }))
    .unwrap()
}

fn data(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 253) as u8).collect::<Vec<u8>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refreshed_and_the_rotated_refresh_token_is_stored() {
    let fake = FakeOneDrive::start().await;
    let first = fake.issue_access_token();
    let store = Arc::new(MemoryTokenStore::new());
    let module =
        OneDriveModule::new(config(&fake, Some(first.clone())), Some(store.clone() as Arc<dyn TokenStore>)).unwrap();
    fake.expire_access_tokens();
    let body = data(3 * FRAGMENT_UNIT + 77);
    let receipt = module.write(ByteStream::from_bytes(body.clone()), WriteMeta::new("cam/x.bin")).await.unwrap();
    assert_eq!(fake.file(&format!("/csal/{}", receipt.object_id)).unwrap(), body);
    assert_eq!(fake.token_requests(), 1);
    let saved = store.latest().expect("refreshed tokens were not stored");
    assert_ne!(saved.access_token.expose_secret(), first);
    let rotated = saved.refresh_token.unwrap();
    assert_ne!(rotated.expose_secret(), REFRESH_TOKEN, "the rotated refresh token was not kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_size_body_is_spooled_and_sent_in_320k_fragments() {
    let fake = FakeOneDrive::start().await;
    let module = OneDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    let body = data(5 * 640 * 1024 + 1234);
    let chunks: Vec<Result<Bytes, csal_core::StorageError>> =
        body.chunks(100_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let stream = ByteStream::new(futures::stream::iter(chunks), None);
    let receipt = module.write(stream, WriteMeta::new("u.bin")).await.unwrap();
    assert_eq!(receipt.size, body.len() as u64);
    assert_eq!(fake.fragments(), 6, "5 full 640 KiB fragments and a tail");
    let back = module.read(&receipt.object_id, None).await.unwrap();
    let got: Vec<u8> = back.map(|c| c.unwrap().to_vec()).concat().await;
    assert_eq!(Bytes::from(got), body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_429_and_503_are_transient_with_retry_after() {
    let fake = FakeOneDrive::start().await;
    let module = OneDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.inject_throttle(429, 1, 4);
    fake.inject_throttle(503, 1, 2);
    let e = module.stat("a.bin").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
    let e = module.stat("a.bin").await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    assert_eq!(module.stat("a.bin").await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(fake.throttled(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_consent_is_auth_and_health_is_degraded() {
    let fake = FakeOneDrive::start().await;
    let module = OneDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.revoke_refresh_tokens();
    fake.expire_access_tokens();
    let e = module.write(ByteStream::from_bytes(data(10)), WriteMeta::new("x.bin")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(e.to_string().contains("re-authorise"), "{e}");
    let health = module.health_check().await;
    assert_eq!(health.status, HealthStatus::Degraded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_refuses_bad_fragments_and_auth_on_upload_url() {
    let fake = FakeOneDrive::start().await;
    let t = fake.issue_access_token();
    let http = reqwest::Client::new();
    let created: serde_json::Value = http
        .post(format!("{}/me/drive/root:/s/f.bin:/createUploadSession", fake.graph_url()))
        .bearer_auth(&t)
        .json(&json!({"item": {"@microsoft.graph.conflictBehavior": "fail"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = created["uploadUrl"].as_str().unwrap().to_owned();
    let put = |range: String, len: usize, auth: bool| {
        let mut req = http.put(&url).header("Content-Range", range).body(data(len));
        if auth {
            req = req.bearer_auth(&t);
        }
        req.send()
    };
    let total = 2 * FRAGMENT_UNIT;
    assert_eq!(put(format!("bytes 0-999/{total}"), 1000, false).await.unwrap().status(), 400, "not a 320 KiB multiple");
    assert_eq!(put(format!("bytes 0-{}/{total}", FRAGMENT_UNIT - 1), FRAGMENT_UNIT, true).await.unwrap().status(), 401);
    let ok = put(format!("bytes 0-{}/{total}", FRAGMENT_UNIT - 1), FRAGMENT_UNIT, false).await.unwrap();
    assert_eq!(ok.status(), 202);
    let again = put(format!("bytes 0-{}/{total}", FRAGMENT_UNIT - 1), FRAGMENT_UNIT, false).await.unwrap();
    assert_eq!(again.status(), 416, "a fragment already received");
    let last = put(format!("bytes {FRAGMENT_UNIT}-{}/{total}", total - 1), FRAGMENT_UNIT, false).await.unwrap();
    assert_eq!(last.status(), 201);
    // conflictBehavior fail: a second file at the same path is refused.
    let dup = http
        .put(format!("{}/me/drive/root:/s/f.bin:/content?@microsoft.graph.conflictBehavior=fail", fake.graph_url()))
        .bearer_auth(&t)
        .body(data(5))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    assert!(dup.text().await.unwrap().contains("nameAlreadyExists"));
}

/// Bounded memory for a body of known size: never more than two fragments
/// (plus one source chunk) ahead of what the server has received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_of_known_size_pulls_at_most_two_fragments_ahead() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let fake = Arc::new(FakeOneDrive::start().await);
    let module = OneDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    const PIECE: usize = 64 * 1024;
    let fragment = 640 * 1024;
    let pieces = 20 * fragment / PIECE + 3;
    let max_ahead = Arc::new(AtomicU64::new(0));
    let (f, m) = (fake.clone(), max_ahead.clone());
    let stream = futures::stream::iter(0..pieces).map(move |i| {
        let produced = ((i + 1) * PIECE) as u64;
        m.fetch_max(produced.saturating_sub(f.bytes_received()), Ordering::Relaxed);
        Ok(Bytes::from(vec![(i % 256) as u8; PIECE]))
    });
    let size = (pieces * PIECE) as u64;
    let receipt = module.write(ByteStream::new(stream, Some(size)), WriteMeta::new("stream.bin")).await.unwrap();
    assert_eq!(receipt.size, size);
    let ahead = max_ahead.load(Ordering::Relaxed);
    assert!(ahead <= (2 * fragment + PIECE) as u64, "pulled {ahead} bytes ahead of the server");
    assert!(ahead >= fragment as u64, "the check measured nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_drive_quota_and_degrades_on_graphs_state() {
    let fake = FakeOneDrive::start().await;
    let module = OneDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.set_quota(Some(1_000_000), 200_000);
    module.write(ByteStream::from_bytes(data(30_000)), WriteMeta::new("cam/q.bin")).await.unwrap();
    let report = module.health_check().await;
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), Some(770_000), "{report:?}");
    assert_eq!(report.details[csal_http::QUOTA_USED_BYTES], 230_000);

    // 99.2% used: Graph says `critical`.
    fake.set_quota(Some(1_000_000), 962_000);
    let report = module.health_check().await;
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
    assert_eq!(report.free_bytes(), Some(8_000));
    assert_eq!(report.last_error.as_deref(), Some("OneDrive quota state is critical"));

    fake.set_quota(Some(1_000_000), 1_000_000);
    let report = module.health_check().await;
    assert_eq!(report.last_error.as_deref(), Some("OneDrive quota state is exceeded"));
    assert_eq!(report.free_bytes(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drive_without_a_quota_facet_reports_no_free_bytes() {
    let fake = FakeOneDrive::start().await;
    let module = OneDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.set_quota(None, 0);
    let report = module.health_check().await;
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), None, "{report:?}");
}

// The one PUT of a small write lands, but its answer is lost (the fault
// proxy forwards it, then drops the connection): the item is looked for
// and found, so the write succeeds once, one-shot or replayable (the core
// would otherwise retry a replayable body under a new id and leave the
// first item behind, stored twice; a one-shot body's write failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_write_whose_answer_was_lost_is_confirmed_and_stored_once() {
    use csal_core::{InstanceDefinition, LayerConfig, ListRequest, StorageRouter};
    use csal_testkit::{Fault, FaultPlan, FaultProxy};
    let fake = FakeOneDrive::start().await;
    let graph = fake.graph_url();
    let proxy = FaultProxy::start(graph.trim_end_matches("/v1.0"), FaultPlan::none()).await.unwrap();
    let config = json!({
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN,
        "access_token": fake.issue_access_token(), "root_path": "/csal",
        "graph_url": format!("{}/v1.0", proxy.url()), "token_url": fake.token_url(),
    });
    let router = StorageRouter::new(&[InstanceDefinition::new("o", "onedrive", config)], LayerConfig::default());
    let body = data(100_000);
    for replayable in [false, true] {
        let folder = format!("lost-{replayable}");
        let stream = match replayable {
            true => ByteStream::from_bytes(body.clone()),
            false => ByteStream::new(futures::stream::iter([Ok(body.clone())]), None),
        };
        proxy.clear_log();
        proxy.push_faults([Fault::DropAnswer]);
        let receipt = router.write("o", stream, WriteMeta::new(format!("{folder}/seg.ts"))).await;
        let receipt = receipt.unwrap_or_else(|e| panic!("replayable {replayable}: {e}"));
        let methods: Vec<String> = proxy.log().into_iter().map(|r| r.method).collect();
        assert_eq!(methods, ["PUT", "GET"], "replayable {replayable}: the lost answer, one look");
        assert_eq!(fake.file(&format!("/csal/{}", receipt.object_id)).unwrap(), body);
        let listed = router.list("o", &ListRequest::new(folder.as_str())).await.unwrap().objects;
        assert_eq!(listed.len(), 1, "replayable {replayable}: stored as {listed:?}");
    }
}
