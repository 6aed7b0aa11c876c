//! RFC 4331 quotas in health checks, on csal-fakes' WebDAV server, whose
//! quota the test sets (wsgidav answers the properties with its disk's
//! usage, checked in `conformance.rs`; Apache 2.4's mod_dav_fs does not
//! answer them).

csal_core::link_providers!(csal_webdav);

use csal_core::{ByteStream, HealthStatus, InstanceDefinition, StorageRouter, WriteMeta};
use csal_fakes::webdav::WebDavFake;

fn router(fake: &WebDavFake) -> StorageRouter {
    StorageRouter::from_definitions(&[InstanceDefinition::new("d", "webdav", serde_json::json!({ "url": fake.url() }))])
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_quota_available_as_the_free_bytes() {
    let fake = WebDavFake::start().await;
    fake.set_quota(Some(100_000));
    let r = router(&fake);
    r.write("d", ByteStream::from_bytes(vec![1u8; 25_000]), WriteMeta::new("cam/a.bin")).await.unwrap();
    assert_eq!(fake.file_count(), 1);
    let report = r.health_check("d").await.unwrap();
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), Some(75_000), "quota-available-bytes: {report:?}");
    assert_eq!(report.details[csal_http::QUOTA_USED_BYTES], 25_000);

    // Nearly full: the free bytes say so (the capacity forecast turns the
    // target degraded at its ingest rate: csal-spool's gateway tests); no
    // total is derived, so no percentage verdict here.
    r.write("d", ByteStream::from_bytes(vec![2u8; 70_000]), WriteMeta::new("cam/b.bin")).await.unwrap();
    let report = r.health_check("d").await.unwrap();
    assert_eq!(report.free_bytes(), Some(5_000), "{report:?}");
    assert!(!report.details.contains_key(csal_http::QUOTA_TOTAL_BYTES), "{report:?}");
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
