//! RFC 4331 quotas in health checks, on csal-fakes' WebDAV server (neither
//! wsgidav's filesystem provider nor Apache's mod_dav_fs answers the quota
//! properties, so the emulators cannot show them).

csal_core::link_providers!(csal_webdav);

use csal_core::{ByteStream, HealthStatus, InstanceDefinition, StorageRouter, WriteMeta};
use csal_fakes::webdav::WebDavFake;

fn router(fake: &WebDavFake) -> StorageRouter {
    StorageRouter::from_definitions(&[InstanceDefinition::new("d", "webdav", serde_json::json!({ "url": fake.url() }))])
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_quota_available_and_degrades_when_nearly_full() {
    let fake = WebDavFake::start().await;
    fake.set_quota(Some(100_000));
    let r = router(&fake);
    r.write("d", ByteStream::from_bytes(vec![1u8; 25_000]), WriteMeta::new("cam/a.bin")).await.unwrap();
    assert_eq!(fake.file_count(), 1);
    let report = r.health_check("d").await.unwrap();
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), Some(75_000), "quota-available-bytes: {report:?}");
    assert_eq!(report.details[csal_http::QUOTA_USED_BYTES], 25_000);
    assert_eq!(report.details[csal_http::QUOTA_TOTAL_BYTES], 100_000);

    r.write("d", ByteStream::from_bytes(vec![2u8; 70_000]), WriteMeta::new("cam/b.bin")).await.unwrap();
    let report = r.health_check("d").await.unwrap();
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
    assert_eq!(report.free_bytes(), Some(5_000));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_without_quota_properties_reports_no_free_bytes() {
    let fake = WebDavFake::start().await;
    let r = router(&fake);
    r.write("d", ByteStream::from_bytes(vec![1u8; 1_000]), WriteMeta::new("cam/a.bin")).await.unwrap();
    let report = r.health_check("d").await.unwrap();
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), None, "{report:?}");
    assert!(!report.details.contains_key(csal_http::QUOTA_USED_BYTES), "{report:?}");
}
