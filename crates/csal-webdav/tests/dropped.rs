//! A write whose future is dropped midway (a camera stream that hangs and
//! is timed out) leaves neither a visible object nor a temporary file.

csal_core::link_providers!(csal_webdav);

use std::time::Duration;

use csal_core::{ByteStream, InstanceDefinition, ListRequest, StorageModule, StorageRouter, WriteMeta};
use futures::StreamExt;

async fn raw_names(url: &str, user: &str, password: &str, dir: &str) -> Vec<String> {
    let resp = reqwest::Client::new()
        .request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), format!("{url}{dir}/"))
        .basic_auth(user, Some(password))
        .header("depth", "1")
        .send()
        .await
        .unwrap();
    if resp.status().as_u16() == 404 {
        return Vec::new();
    }
    let text = resp.text().await.unwrap();
    text.split("href>")
        .filter_map(|s| s.split('<').next())
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

async fn dropped_write_leaves_nothing(label: &str, url_var: &str, user_var: &str, password_var: &str) {
    let Some(url) = csal_conformance::require_env(url_var, label, "webdav") else { return };
    let user = std::env::var(user_var).unwrap_or_default();
    let password = std::env::var(password_var).unwrap_or_default();
    let config = serde_json::json!({ "url": url, "username": user, "password": password });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("d", "webdav", config)]);
    let m = router.module("d").unwrap();
    let dir = format!("dropped-{}", ulid::Ulid::new().to_string().to_lowercase());
    // 256 KiB, then the source hangs forever.
    let first = futures::stream::iter([Ok(bytes::Bytes::from(vec![9u8; 256 * 1024]))]);
    let body = ByteStream::new(first.chain(futures::stream::pending()), None);
    let write = m.write(body, WriteMeta::new(format!("{dir}/hang.bin")));
    assert!(tokio::time::timeout(Duration::from_millis(500), write).await.is_err(), "write cannot finish");
    // The clean-up DELETE runs in a task: wait for it (bounded) by polling the server.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut names = raw_names(&url, &user, &password, &dir).await;
    while names.iter().any(|n| n.contains(".csal-partial-")) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        names = raw_names(&url, &user, &password, &dir).await;
    }
    assert!(!names.iter().any(|n| n.contains(".csal-partial-")), "temporary upload left behind: {names:?}");
    let listed = m.list(&ListRequest::new(dir)).await.unwrap();
    assert!(listed.objects.is_empty(), "a dropped write left {:?}", listed.objects);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_write_leaves_nothing_on_wsgidav() {
    dropped_write_leaves_nothing(
        "webdav-dropped@wsgidav",
        "CSAL_TEST_WEBDAV_WSGIDAV_URL",
        "CSAL_TEST_WEBDAV_WSGIDAV_USER",
        "CSAL_TEST_WEBDAV_WSGIDAV_PASSWORD",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_write_leaves_nothing_on_apache() {
    dropped_write_leaves_nothing(
        "webdav-dropped@apache",
        "CSAL_TEST_WEBDAV_APACHE_URL",
        "CSAL_TEST_WEBDAV_APACHE_USER",
        "CSAL_TEST_WEBDAV_APACHE_PASSWORD",
    )
    .await;
}
