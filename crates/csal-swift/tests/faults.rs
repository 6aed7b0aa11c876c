//! csal-swift under injected faults: the csal-testkit proxy sits between the
//! provider and the Swift all-in-one (auth included: TempAuth builds the
//! storage URL from the Host it sees, so object requests go through the
//! proxy too), and everything goes through a `StorageRouter`, so the core
//! retry and timeout layers are in the loop as in production.

csal_core::link_providers!(csal_swift);

use csal_core::InstanceDefinition;

use csal_core::StorageRouter;
use csal_testkit::FaultProxy;
use csal_testkit::scenarios::{
    layers, plan, slow_down_is_retried_after_the_wait, writes_under_faults_read_back_or_fail_transient,
};

async fn setup(seed: u64) -> Option<(FaultProxy, StorageRouter)> {
    let auth_url = csal_conformance::require_env("CSAL_TEST_SWIFT_AUTH_URL", "swift-faults", "swift")?;
    let user = std::env::var("CSAL_TEST_SWIFT_USER").unwrap_or_default();
    let key = std::env::var("CSAL_TEST_SWIFT_KEY").unwrap_or_default();
    let parsed = url::Url::parse(&auth_url).expect("auth url");
    let upstream = format!("http://{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap_or(80));
    let proxy = FaultProxy::start(&upstream, plan(seed)).await.expect("proxy starts");
    let config = serde_json::json!({
        "auth_url": format!("{}{}", proxy.url(), parsed.path()), "username": user, "password": key,
        "container": "csal-faults", "segment_size_mb": 1,
        "connect_timeout_secs": 2, "read_timeout_secs": 2,
    });
    Some((proxy, StorageRouter::new(&[InstanceDefinition::new("faulty", "swift", config)], layers())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_write_under_faults_reads_back_identical_or_fails_transient() {
    let Some((proxy, router)) = setup(0x51F7_0001).await else { return };
    // 3 MiB + a bit in 1 MiB segments: the SLO path meets faults too.
    writes_under_faults_read_back_or_fail_transient(&proxy, &router, 3 * 1024 * 1024 + 5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_busy_with_retry_after_is_waited_out() {
    let Some((proxy, router)) = setup(1).await else { return };
    slow_down_is_retried_after_the_wait(&proxy, &router).await;
}
