//! csal-swift under injected faults: the csal-testkit proxy sits between the
//! provider and the Swift all-in-one (auth included: TempAuth builds the
//! storage URL from the Host it sees, so object requests go through the
//! proxy too), and everything goes through a `StorageRouter`, so the core
//! retry and timeout layers are in the loop as in production.

csal_core::link_providers!(csal_swift);

use std::time::{Duration, Instant};

use bytes::Bytes;
use csal_core::{ByteStream, ErrorClass, InstanceDefinition, LayerConfig, StorageRouter, WriteMeta};
use csal_testkit::{Fault, FaultPlan, FaultProxy};

/// The proxy and a router through it, with the token fetched and the
/// containers made beforehand (one write), so the tests' queued faults and
/// request counts meet only the requests they are about.
async fn setup(plan: FaultPlan) -> Option<(FaultProxy, StorageRouter)> {
    let auth_url = csal_conformance::require_env("CSAL_TEST_SWIFT_AUTH_URL", "swift-faults", "swift")?;
    let user = std::env::var("CSAL_TEST_SWIFT_USER").unwrap_or_default();
    let key = std::env::var("CSAL_TEST_SWIFT_KEY").unwrap_or_default();
    let parsed = url::Url::parse(&auth_url).expect("auth url");
    let upstream = format!("http://{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap_or(80));
    let proxy = FaultProxy::start(&upstream, FaultPlan::none()).await.expect("proxy starts");
    let config = serde_json::json!({
        "auth_url": format!("{}{}", proxy.url(), parsed.path()), "username": user, "password": key,
        "container": "csal-faults", "segment_size_mb": 1,
        "connect_timeout_secs": 2, "read_timeout_secs": 2,
    });
    let router = StorageRouter::new(&[InstanceDefinition::new("faulty", "swift", config)], layers());
    let warm_up = router.write("faulty", ByteStream::from_bytes(&b"warm-up"[..]), WriteMeta::new("faults/warm-up"));
    router.delete("faulty", &warm_up.await.expect("warm-up write").object_id).await.expect("warm-up delete");
    proxy.clear_log();
    proxy.set_plan(plan);
    Some((proxy, router))
}

csal_testkit::http_fault_tests!();
