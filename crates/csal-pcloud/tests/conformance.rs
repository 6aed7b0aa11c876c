//! The shared conformance suite on the in-process pCloud fake (csal-fakes).

csal_core::link_providers!(csal_pcloud);

use csal_fakes::pcloud::PcloudFake;

fn login_config(fake: &PcloudFake) -> serde_json::Value {
    serde_json::json!({
        "api_url": fake.url(),
        "root": "/csal-test",
        "username": csal_fakes::pcloud::USERNAME,
        "password": csal_fakes::pcloud::PASSWORD,
        "part_size": 1048576,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pcloud_login_passes_conformance_on_fake() {
    let fake = PcloudFake::start().await;
    let mut bad = login_config(&fake);
    bad["password"] = "not-the-password-123".into();
    let target = csal_conformance::Target::new("pcloud@fake(login)", "pcloud", login_config(&fake))
        .large_size(3 * 1024 * 1024 + 12_345)
        .bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pcloud_oauth_token_passes_conformance_on_fake() {
    let fake = PcloudFake::start().await;
    let config = serde_json::json!({ "api_url": fake.url(), "access_token": csal_fakes::pcloud::ACCESS_TOKEN });
    let bad = serde_json::json!({ "api_url": fake.url(), "access_token": "wrong-token-value-42" });
    let target = csal_conformance::Target::new("pcloud@fake(oauth)", "pcloud", config).bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_result_2008_is_quota_exceeded() {
    use csal_core::{ByteStream, ErrorKind, InstanceDefinition, StorageRouter, WriteMeta};
    let fake = PcloudFake::start().await;
    fake.set_quota(100);
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("p", "pcloud", login_config(&fake))]);
    let err = router.write("p", ByteStream::from_bytes(vec![7u8; 500]), WriteMeta::new("q.bin")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_session_upload_leaves_no_open_session() {
    use csal_core::{ByteStream, InstanceDefinition, StorageRouter, WriteMeta};
    let fake = PcloudFake::start().await;
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("p", "pcloud", login_config(&fake))]);
    let chunks: Vec<csal_core::Result<bytes::Bytes>> = vec![
        Ok(bytes::Bytes::from(vec![1u8; 1024 * 1024])),
        Ok(bytes::Bytes::from(vec![2u8; 1024 * 1024])),
        Err(csal_core::StorageError::transient("source broke")),
    ];
    let body = ByteStream::new(futures::stream::iter(chunks), None);
    router.write("p", body, WriteMeta::new("broken.bin")).await.unwrap_err();
    assert_eq!(fake.open_uploads(), 0, "the failed upload session was not deleted");
    assert_eq!(fake.file_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_quota_left_and_degrades_when_nearly_full() {
    use csal_core::{ByteStream, HealthStatus, InstanceDefinition, StorageRouter, WriteMeta};
    let fake = PcloudFake::start().await;
    fake.set_quota(100_000);
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("p", "pcloud", login_config(&fake))]);
    router.write("p", ByteStream::from_bytes(vec![1u8; 30_000]), WriteMeta::new("q/a.bin")).await.unwrap();
    let report = router.health_check("p").await.unwrap();
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), Some(70_000), "{report:?}");
    assert_eq!(report.details[csal_http::QUOTA_USED_BYTES], 30_000);
    router.write("p", ByteStream::from_bytes(vec![2u8; 62_000]), WriteMeta::new("q/b.bin")).await.unwrap();
    let report = router.health_check("p").await.unwrap();
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
    assert_eq!(report.free_bytes(), Some(8_000));
}

/// A private CA (`ca_file`): the fake behind csal-testkit's TLS proxy
/// (`https://127.0.0.1:PORT`, certificate signed by a CA made by the test),
/// token endpoint included; trusted only with `ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcloud_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let fake = PcloudFake::start().await;
    let proxy = csal_testkit::tls::TlsProxy::in_front_of(&fake.url()).await;
    let (with_ca, without_ca) = proxy.configs(&login_config(&fake), &["api_url"]);
    csal_conformance::tls::private_ca("pcloud", with_ca, without_ca).await;
}
