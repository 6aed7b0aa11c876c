//! The shared conformance suite against real WebDAV servers started by
//! `cargo xtask` (wsgidav, Apache mod_dav with Basic and with Digest auth).

csal_core::link_providers!(csal_webdav);

use csal_conformance::{Target, require_env, run};
use serde_json::json;

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
