//! Google Drive-specific behaviour against the fake: refresh after expiry
//! with the token stored, 403 userRateLimitExceeded, revoked consent,
//! concurrent writers sharing one new folder, bounded memory.

csal_core::link_providers!(csal_gdrive);

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use csal_core::{ByteStream, ErrorClass, ErrorKind, ExposeSecret, HealthStatus, ListRequest, StorageModule, WriteMeta};
use csal_fakes::gdrive::{CHUNK_UNIT, CLIENT_ID, CLIENT_SECRET, FakeGoogleDrive, REFRESH_TOKEN};
use csal_gdrive::{GDriveConfig, GDriveModule};
use csal_oauth::{MemoryTokenStore, TokenStore};
use futures::StreamExt;
use serde_json::json;

fn config(fake: &FakeGoogleDrive, access_token: Option<String>) -> GDriveConfig {
    serde_json::from_value(json!({
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "access_token": access_token,
        "chunk_size_kib": 512,
        "api_url": fake.api_url(),
        "token_url": fake.token_url(),
    }))
    .unwrap()
}

fn data(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 241) as u8).collect::<Vec<u8>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refreshed_once_and_stored() {
    let fake = FakeGoogleDrive::start().await;
    let first = fake.issue_access_token();
    let store = Arc::new(MemoryTokenStore::new());
    let module =
        GDriveModule::new(config(&fake, Some(first.clone())), Some(store.clone() as Arc<dyn TokenStore>)).unwrap();
    fake.expire_access_tokens();
    let body = data(3 * CHUNK_UNIT + 5);
    let r = module.write(ByteStream::from_bytes(body.clone()), WriteMeta::new("a/b/c.bin")).await.unwrap();
    let back = module.read(&r.object_id, None).await.unwrap().collect_limited(1 << 22).await.unwrap();
    assert_eq!(back, body);
    assert_eq!(fake.token_requests(), 1);
    assert_ne!(store.latest().unwrap().access_token.expose_secret(), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_rate_limit_403_is_transient() {
    let fake = FakeGoogleDrive::start().await;
    let module = GDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.inject_rate_limit(1);
    let e = module.stat("x.bin").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.class(), ErrorClass::Transient);
    assert_eq!(module.stat("x.bin").await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_consent_is_auth_and_health_is_degraded() {
    let fake = FakeGoogleDrive::start().await;
    let module = GDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.revoke_refresh_token();
    fake.expire_access_tokens();
    let e = module.write(ByteStream::from_bytes(data(3)), WriteMeta::new("x.bin")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(e.to_string().contains("re-authorise"), "{e}");
    assert_eq!(module.health_check().await.status, HealthStatus::Degraded);
    assert_eq!(fake.file_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_share_one_new_folder() {
    let fake = FakeGoogleDrive::start().await;
    let module = Arc::new(GDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap());
    let tasks = (0..16).map(|i| {
        let m = module.clone();
        tokio::spawn(
            async move { m.write(ByteStream::from_bytes(data(100 + i)), WriteMeta::new("new/dir/f.bin")).await },
        )
    });
    for t in futures::future::join_all(tasks).await {
        t.unwrap().unwrap();
    }
    // One folder "new" with one "dir" in it: all 16 files list together.
    let page = module.list(&ListRequest::new("new/dir")).await.unwrap();
    assert_eq!(page.objects.len(), 16);
    assert!(page.next_page.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_pulls_at_most_two_chunks_ahead_of_the_server() {
    let fake = Arc::new(FakeGoogleDrive::start().await);
    let module = GDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    const PIECE: usize = 64 * 1024;
    let chunk = 512 * 1024;
    let pieces = 20 * chunk / PIECE + 3;
    let max_ahead = Arc::new(AtomicU64::new(0));
    let (f, m) = (fake.clone(), max_ahead.clone());
    let stream = futures::stream::iter(0..pieces).map(move |i| {
        let produced = ((i + 1) * PIECE) as u64;
        m.fetch_max(produced.saturating_sub(f.bytes_received()), Ordering::Relaxed);
        Ok(Bytes::from(vec![(i % 256) as u8; PIECE]))
    });
    let r = module.write(ByteStream::new(stream, None), WriteMeta::new("s.bin")).await.unwrap();
    assert_eq!(r.size, (pieces * PIECE) as u64);
    let ahead = max_ahead.load(Ordering::Relaxed);
    assert!(ahead <= (2 * chunk + PIECE) as u64, "pulled {ahead} bytes ahead of the server");
    assert!(ahead >= chunk as u64, "the check measured nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_quota_left_and_degrades_when_nearly_full() {
    let fake = FakeGoogleDrive::start().await;
    let module = GDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.set_storage_quota(Some(1_000_000), 100_000);
    module.write(ByteStream::from_bytes(data(50_000)), WriteMeta::new("q/a.bin")).await.unwrap();
    let report = module.health_check().await;
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), Some(850_000), "limit less Drive's and other services' usage: {report:?}");
    assert_eq!(report.details[csal_http::QUOTA_USED_BYTES], 150_000);
    assert_eq!(report.details[csal_http::QUOTA_TOTAL_BYTES], 1_000_000);

    fake.set_storage_quota(Some(1_000_000), 880_000);
    let report = module.health_check().await;
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
    assert_eq!(report.free_bytes(), Some(70_000));
    assert!(report.last_error.as_deref().unwrap().contains("quota"), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_storage_reports_no_free_bytes() {
    let fake = FakeGoogleDrive::start().await;
    let module = GDriveModule::new(config(&fake, Some(fake.issue_access_token())), None).unwrap();
    fake.set_storage_quota(None, 5_000);
    let report = module.health_check().await;
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), None, "{report:?}");
    assert_eq!(report.details[csal_http::QUOTA_USED_BYTES], 5_000);
}
