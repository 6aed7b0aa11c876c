//! csal-webdav under injected faults: the csal-testkit proxy sits between
//! the provider and wsgidav, and everything goes through a `StorageRouter`,
//! so the core retry and timeout layers are in the loop as in production.

csal_core::link_providers!(csal_webdav);

use csal_core::InstanceDefinition;

use csal_core::StorageRouter;
use csal_testkit::FaultProxy;
use csal_testkit::scenarios::{
    layers, plan, slow_down_is_retried_after_the_wait, writes_under_faults_read_back_or_fail_transient,
};

async fn setup(seed: u64) -> Option<(FaultProxy, StorageRouter)> {
    let url = csal_conformance::require_env("CSAL_TEST_WEBDAV_WSGIDAV_URL", "webdav-faults", "webdav")?;
    let user = std::env::var("CSAL_TEST_WEBDAV_WSGIDAV_USER").unwrap_or_default();
    let password = std::env::var("CSAL_TEST_WEBDAV_WSGIDAV_PASSWORD").unwrap_or_default();
    let upstream = url.trim_end_matches('/').to_owned();
    let proxy = FaultProxy::start(&upstream, plan(seed)).await.expect("proxy starts");
    let config = serde_json::json!({
        "url": format!("{}/", proxy.url()), "username": user, "password": password,
        "connect_timeout_secs": 2, "read_timeout_secs": 2,
    });
    Some((proxy, StorageRouter::new(&[InstanceDefinition::new("faulty", "webdav", config)], layers())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_write_under_faults_reads_back_identical_or_fails_transient() {
    let Some((proxy, router)) = setup(0xDA7_0001).await else { return };
    writes_under_faults_read_back_or_fail_transient(&proxy, &router, 3 * 1024 * 1024 + 5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_busy_with_retry_after_is_waited_out() {
    let Some((proxy, router)) = setup(1).await else { return };
    slow_down_is_retried_after_the_wait(&proxy, &router).await;
}
