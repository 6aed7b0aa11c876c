//! Peak memory (VmHWM of this test process, which runs only this test)
//! while 1 GiB of unknown size streams through the provider and back.

csal_core::link_providers!(csal_swift);

use csal_core::{InstanceDefinition, StorageRouter};
use csal_testkit::memory::{large_size, round_trip_within};

async fn stream_one_gib(provider: &str, config: serde_json::Value) {
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("rss", provider, config)]);
    round_trip_within(&router, "rss", large_size(1 << 30), 64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_through_swift_keeps_peak_rss_under_64_mib() {
    let Some(auth_url) = csal_conformance::require_env("CSAL_TEST_SWIFT_AUTH_URL", "swift-rss", "swift") else {
        return;
    };
    let user = std::env::var("CSAL_TEST_SWIFT_USER").unwrap_or_default();
    let key = std::env::var("CSAL_TEST_SWIFT_KEY").unwrap_or_default();
    // Default segment size (16 MiB): 64 segments plus a manifest.
    let config =
        serde_json::json!({ "auth_url": auth_url, "username": user, "password": key, "container": "csal-rss" });
    stream_one_gib("swift", config).await;
}
