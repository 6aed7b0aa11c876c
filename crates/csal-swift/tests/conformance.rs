//! The shared conformance suite, and Swift-specific behaviour (SLO segments,
//! temp URLs), against the Swift all-in-one that `cargo xtask` starts.

csal_core::link_providers!(csal_swift);

use csal_conformance::{Target, require_env, run};
use csal_core::{ByteStream, InstanceDefinition, ListRequest, StorageModule, StorageRouter, WriteMeta};
use serde_json::{Value, json};

struct Server {
    auth_url: String,
    user: String,
    key: String,
}

fn server(label: &str) -> Option<Server> {
    let auth_url = require_env("CSAL_TEST_SWIFT_AUTH_URL", label, "swift")?;
    let user = require_env("CSAL_TEST_SWIFT_USER", label, "swift")?;
    let key = require_env("CSAL_TEST_SWIFT_KEY", label, "swift")?;
    Some(Server { auth_url, user, key })
}

fn config(s: &Server, container: &str, extra: Value) -> Value {
    let mut c = json!({
        "auth_url": s.auth_url, "username": s.user, "password": s.key,
        "container": container, "segment_size_mb": 5,
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        c[k] = v;
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swift_tempauth_passes_conformance() {
    let label = "swift@swift-aio";
    let Some(s) = server(label) else { return };
    let good = config(&s, "csal-conformance", json!({ "temp_url_key": "conformance-temp-url-key" }));
    let mut bad = good.clone();
    bad["password"] = json!("wrong-key-98765");
    // large_size: 12 MiB + a bit > 5 MiB segments, so the SLO path runs.
    run(Target::new(label, "swift", good).bad_credentials(bad)).await.assert_passed();
}

fn module(config: Value) -> std::sync::Arc<csal_core::LayeredModule> {
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("t", "swift", config)]);
    router.module("t").expect("instance loads")
}

/// Plain Swift request with a TempAuth token (test set-up and inspection).
async fn swift_api(s: &Server) -> (reqwest::Client, String, String) {
    let http = reqwest::Client::new();
    let resp =
        http.get(&s.auth_url).header("X-Auth-User", &s.user).header("X-Auth-Key", &s.key).send().await.expect("auth");
    let token = resp.headers()["x-auth-token"].to_str().unwrap().to_owned();
    let url = resp.headers()["x-storage-url"].to_str().unwrap().to_owned();
    (http, token, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn large_object_is_an_slo_whose_segments_go_with_delete() {
    let Some(s) = server("swift-slo") else { return };
    let container = format!("csal-slo-{}", ulid::Ulid::new().to_string().to_lowercase());
    let m = module(config(&s, &container, json!({ "segment_size_mb": 1 })));
    // Known size (3.5 segments) and unknown size (generated) both go SLO.
    let data = bytes::Bytes::from((0..3_670_016u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let receipt = m.write(ByteStream::from_bytes(data.clone()), WriteMeta::new("cam/big.bin")).await.unwrap();
    assert_eq!(receipt.size, data.len() as u64);
    let (http, token, url) = swift_api(&s).await;
    let segs: Vec<Value> = http
        .get(format!("{url}/{container}_segments?format=json"))
        .header("X-Auth-Token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(segs.len(), 4, "3.5 MiB in 1 MiB segments");
    let back = m.read(&receipt.object_id, None).await.unwrap().collect_limited(8 << 20).await.unwrap();
    assert_eq!(back, data);
    m.delete(&receipt.object_id).await.unwrap();
    let resp = http.get(format!("{url}/{container}_segments?format=json")).header("X-Auth-Token", &token).send().await;
    let left: Vec<Value> = match resp.unwrap() {
        r if r.status().as_u16() == 204 => Vec::new(),
        r => r.json().await.unwrap(),
    };
    assert!(left.is_empty(), "segments left after delete: {left:?}");
    assert!(m.list(&ListRequest::new("cam")).await.unwrap().objects.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_large_upload_leaves_no_segments_behind() {
    let Some(s) = server("swift-slo-fail") else { return };
    let container = format!("csal-slofail-{}", ulid::Ulid::new().to_string().to_lowercase());
    let m = module(config(&s, &container, json!({ "segment_size_mb": 1 })));
    let good = bytes::Bytes::from(vec![7u8; 2_500_000]);
    let body = ByteStream::new(
        futures::stream::iter(vec![Ok(good), Err(csal_core::StorageError::transient("camera went away"))]),
        None,
    );
    assert!(m.write(body, WriteMeta::new("broken.bin")).await.is_err());
    let (http, token, url) = swift_api(&s).await;
    let r = http.get(format!("{url}/{container}_segments?format=json")).header("X-Auth-Token", &token).send().await;
    let r = r.unwrap();
    let left = if r.status().as_u16() == 204 { 0 } else { r.json::<Vec<Value>>().await.unwrap().len() };
    assert_eq!(left, 0, "segments of a failed upload were left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn temp_url_reads_the_object_without_a_token() {
    let Some(s) = server("swift-tempurl") else { return };
    let key = "temp-url-key-for-tests";
    let (http, token, url) = swift_api(&s).await;
    let set = http.post(&url).header("X-Auth-Token", &token).header("X-Account-Meta-Temp-URL-Key", key).send().await;
    assert!(set.unwrap().status().is_success());
    let m = module(config(&s, "csal-tempurl", json!({ "temp_url_key": key })));
    let receipt = m.write(ByteStream::from_bytes(&b"hello temp url"[..]), WriteMeta::new("t.txt")).await.unwrap();
    let signed = m.presign_read(&receipt.object_id, std::time::Duration::from_secs(300)).await.unwrap();
    let got = http.get(&signed).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 200, "temp URL refused");
    assert_eq!(&got.bytes().await.unwrap()[..], b"hello temp url");
    let tampered = signed.replace("temp_url_expires=", "temp_url_expires=1");
    assert_eq!(http.get(&tampered).send().await.unwrap().status().as_u16(), 401);
}

/// A fresh container with `X-Container-Meta-Quota-Bytes` set (the
/// `container_quotas` middleware enforces it; the owner may set it).
#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_container_quota_left_and_degrades_when_nearly_full() {
    let Some(s) = server("swift-container-quota") else { return };
    let container = format!("csal-quota-{}", ulid::Ulid::new().to_string().to_lowercase());
    let m = module(config(&s, &container, json!({})));
    m.write(ByteStream::from_bytes(vec![1u8; 30_000]), WriteMeta::new("cam/a.bin")).await.unwrap();
    let report = m.health_check().await;
    assert_eq!(report.free_bytes(), None, "no quota set: unlimited, no made-up number: {report:?}");

    let (http, token, url) = swift_api(&s).await;
    let set = http
        .post(format!("{url}/{container}"))
        .header("X-Auth-Token", &token)
        .header("X-Container-Meta-Quota-Bytes", "100000")
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success(), "{}", set.status());
    let report = m.health_check().await;
    assert_eq!(report.status, csal_core::HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), Some(70_000), "{report:?}");
    assert_eq!(report.details[csal_http::QUOTA_TOTAL_BYTES], 100_000);

    m.write(ByteStream::from_bytes(vec![2u8; 62_000]), WriteMeta::new("cam/b.bin")).await.unwrap();
    let report = m.health_check().await;
    assert_eq!(report.status, csal_core::HealthStatus::Degraded, "{report:?}");
    assert_eq!(report.free_bytes(), Some(8_000));
}

/// An account quota (`X-Account-Meta-Quota-Bytes`, which only a reseller
/// admin may set) on an account of its own: the free bytes are the quota
/// less the bytes the account HEAD reports (Swift updates an account's
/// usage asynchronously, so the test reads the same HEAD).
#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_account_quota_left() {
    let Some(s) = server("swift-account-quota") else { return };
    let Some(quota_user) = require_env("CSAL_TEST_SWIFT_QUOTA_USER", "swift-account-quota", "swift") else { return };
    let reseller = Server {
        auth_url: s.auth_url.clone(),
        user: require_env("CSAL_TEST_SWIFT_RESELLER_USER", "swift-account-quota", "swift").unwrap(),
        key: require_env("CSAL_TEST_SWIFT_RESELLER_KEY", "swift-account-quota", "swift").unwrap(),
    };
    let owner = Server { user: quota_user, ..s };
    let (http, token, account_url) = swift_api(&owner).await;
    let (_, reseller_token, _) = swift_api(&reseller).await;
    let set = http
        .post(&account_url)
        .header("X-Auth-Token", &reseller_token)
        .header("X-Account-Meta-Quota-Bytes", "5000000")
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success(), "{}", set.status());

    let container = format!("csal-aquota-{}", ulid::Ulid::new().to_string().to_lowercase());
    let m = module(config(&owner, &container, json!({})));
    m.write(ByteStream::from_bytes(vec![1u8; 10_000]), WriteMeta::new("cam/a.bin")).await.unwrap();
    let report = m.health_check().await;
    let head = http.head(&account_url).header("X-Auth-Token", &token).send().await.unwrap();
    let used: u64 = head.headers()["x-account-bytes-used"].to_str().unwrap().parse().unwrap();
    assert_eq!(head.headers()["x-account-meta-quota-bytes"], "5000000");
    assert_eq!(report.free_bytes(), Some(5_000_000 - used), "{report:?}");
    assert_eq!(report.details[csal_http::QUOTA_TOTAL_BYTES], 5_000_000);
}

/// A private CA (`ca_file`): the Swift auth endpoint over
/// `https://127.0.0.1:PORT`, csal-testkit's TLS proxy (certificate signed by
/// a CA made by the test). tempauth names the storage URL with the scheme it
/// saw (`http://`, the proxy's port), so the proxy forwards plain requests
/// too: the TLS part proven here is the auth request, which refuses an
/// unknown CA before any data moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swift_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let Some(s) = server("swift-tls") else { return };
    let proxy = csal_testkit::tls::TlsProxy::in_front_of_also_plain(&s.auth_url).await;
    let behind_tls = Server { auth_url: proxy.rewrite(&s.auth_url), user: s.user.clone(), key: s.key.clone() };
    let without_ca = config(&behind_tls, "csal-conformance", json!({}));
    let with_ca = config(&behind_tls, "csal-conformance", json!({ "ca_file": proxy.ca_file() }));
    csal_conformance::tls::private_ca("swift", with_ca, without_ca).await;
}
