//! The shared conformance suite against real WebDAV servers started by
//! `cargo xtask` (wsgidav, Apache mod_dav with Basic and with Digest auth),
//! and the `nextcloud` preset through a local fake of Nextcloud's chunked
//! upload endpoints in front of wsgidav (`support/nextcloud_fake.rs`).

csal_core::link_providers!(csal_webdav);

#[allow(dead_code)]
mod support {
    pub mod nextcloud_fake;
}

use std::sync::atomic::Ordering;

use csal_conformance::{Target, require_env, run};
use serde_json::json;

fn nextcloud_config(url: &str, password: &str) -> serde_json::Value {
    json!({ "server_url": url, "username": "test", "app_password": password, "chunk_size_mb": 5 })
}

fn target(label: &str, url: String, user: String, password: String, auth: &str) -> Target {
    let config = json!({ "url": url, "username": user, "password": password, "auth": auth });
    let bad = json!({ "url": config["url"], "username": user, "password": "wrong-password-1234", "auth": auth });
    Target::new(label, "webdav", config).bad_credentials(bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webdav_on_wsgidav_passes_conformance() {
    let (label, p) = ("webdav@wsgidav", "webdav");
    let Some(url) = require_env("CSAL_TEST_WEBDAV_WSGIDAV_URL", label, p) else { return };
    let user = require_env("CSAL_TEST_WEBDAV_WSGIDAV_USER", label, p).unwrap_or_default();
    let password = require_env("CSAL_TEST_WEBDAV_WSGIDAV_PASSWORD", label, p).unwrap_or_default();
    run(target(label, url, user, password, "basic")).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webdav_on_apache_mod_dav_passes_conformance() {
    let (label, p) = ("webdav@apache", "webdav");
    let Some(url) = require_env("CSAL_TEST_WEBDAV_APACHE_URL", label, p) else { return };
    let user = require_env("CSAL_TEST_WEBDAV_APACHE_USER", label, p).unwrap_or_default();
    let password = require_env("CSAL_TEST_WEBDAV_APACHE_PASSWORD", label, p).unwrap_or_default();
    run(target(label, url, user, password, "basic")).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webdav_digest_auth_on_apache_passes_conformance() {
    let (label, p) = ("webdav-digest@apache", "webdav");
    let Some(url) = require_env("CSAL_TEST_WEBDAV_APACHE_DIGEST_URL", label, p) else { return };
    let user = require_env("CSAL_TEST_WEBDAV_APACHE_USER", label, p).unwrap_or_default();
    let password = require_env("CSAL_TEST_WEBDAV_APACHE_PASSWORD", label, p).unwrap_or_default();
    run(target(label, url, user, password, "digest")).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nextcloud_preset_passes_conformance() {
    let label = "nextcloud@wsgidav+chunking-fake";
    let Some(upstream) = require_env("CSAL_TEST_NEXTCLOUD_URL", label, "nextcloud") else { return };
    let fake = support::nextcloud_fake::start(&upstream).await;
    // large_size (12 MiB + a bit) is above the 5 MiB chunk size: chunked upload v2.
    let target = Target::new(label, "nextcloud", nextcloud_config(&fake.url, "test"))
        .bad_credentials(nextcloud_config(&fake.url, "wrong-app-pw"));
    run(target).await.assert_passed();
    assert!(fake.counters.assembled.load(Ordering::Relaxed) >= 1, "no chunked upload was assembled");
}

/// wsgidav answers RFC 4331's quota properties with its disk's usage
/// (`shutil.disk_usage`): health reports them; Apache's mod_dav_fs does not
/// answer them, and health reports no free bytes there.
#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_servers_quota_properties_where_it_answers_them() {
    use csal_core::{InstanceDefinition, StorageRouter};
    let (label, p) = ("webdav-quota", "webdav");
    let Some(url) = require_env("CSAL_TEST_WEBDAV_WSGIDAV_URL", label, p) else { return };
    let user = require_env("CSAL_TEST_WEBDAV_WSGIDAV_USER", label, p).unwrap_or_default();
    let password = require_env("CSAL_TEST_WEBDAV_WSGIDAV_PASSWORD", label, p).unwrap_or_default();
    let config = serde_json::json!({ "url": url, "username": user, "password": password });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("w", "webdav", config)]);
    let report = router.health_check("w").await.unwrap();
    assert!(report.free_bytes().is_some_and(|b| b > 0), "wsgidav's free disk space: {report:?}");
    assert!(report.details[csal_http::QUOTA_USED_BYTES].as_u64().is_some_and(|b| b > 0), "{report:?}");

    let Some(url) = require_env("CSAL_TEST_WEBDAV_APACHE_URL", label, p) else { return };
    let user = require_env("CSAL_TEST_WEBDAV_APACHE_USER", label, p).unwrap_or_default();
    let password = require_env("CSAL_TEST_WEBDAV_APACHE_PASSWORD", label, p).unwrap_or_default();
    let config = serde_json::json!({ "url": url, "username": user, "password": password });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("a", "webdav", config)]);
    let report = router.health_check("a").await.unwrap();
    assert_eq!(report.free_bytes(), None, "mod_dav_fs answers no quota: {report:?}");
}

/// A private CA (`ca_file`): the `nextcloud` preset over
/// `https://127.0.0.1:PORT`, csal-testkit's TLS proxy (certificate signed by
/// a CA made by the test) in front of the Nextcloud fake and wsgidav (the
/// fake maps `Destination` headers to wsgidav, which refuses a MOVE to
/// another scheme or host).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webdav_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let Some(upstream) = require_env("CSAL_TEST_NEXTCLOUD_URL", "nextcloud-tls", "nextcloud") else { return };
    let fake = support::nextcloud_fake::start(&upstream).await;
    let proxy = csal_testkit::tls::TlsProxy::in_front_of(&fake.url).await;
    let without_ca = nextcloud_config(&proxy.rewrite(&fake.url), "test");
    let mut with_ca = without_ca.clone();
    with_ca["ca_file"] = proxy.ca_file().into();
    csal_conformance::tls::private_ca("nextcloud", with_ca, without_ca).await;
}
