//! Peak memory (VmHWM of this test process, which runs only this test)
//! while 1 GiB of unknown size streams through the provider and back.

csal_core::link_providers!(csal_webdav);

use csal_core::{InstanceDefinition, StorageRouter};
use csal_testkit::memory::{large_size, round_trip_within};

async fn stream_one_gib(provider: &str, config: serde_json::Value) {
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("rss", provider, config)]);
    round_trip_within(&router, "rss", large_size(1 << 30), 64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_through_webdav_keeps_peak_rss_under_64_mib() {
    let Some(url) = csal_conformance::require_env("CSAL_TEST_WEBDAV_APACHE_URL", "webdav-rss", "webdav") else {
        return;
    };
    let user = std::env::var("CSAL_TEST_WEBDAV_APACHE_USER").unwrap_or_default();
    let password = std::env::var("CSAL_TEST_WEBDAV_APACHE_PASSWORD").unwrap_or_default();
    stream_one_gib("webdav", serde_json::json!({ "url": url, "username": user, "password": password })).await;
}
