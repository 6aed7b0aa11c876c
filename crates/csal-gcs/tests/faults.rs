//! csal-gcs under injected faults: the csal-testkit proxy sits between the
//! provider and fake-gcs-server, and everything goes through a
//! `StorageRouter`, so the core retry and timeout layers are in the loop.
//!
//! fake-gcs-server answers a resumable session with a URI on its own
//! address (`-external-url`), so the chunks of a resumable upload bypass
//! the proxy: here faults hit session starts, single-request uploads,
//! reads, stat, list and delete. Chunk resume is the protocol path that
//! only real GCS (live test) exercises end to end.

csal_core::link_providers!(csal_gcs);

use std::time::{Duration, Instant};

use bytes::Bytes;
use csal_core::{ByteStream, ErrorClass, InstanceDefinition, LayerConfig, StorageRouter, WriteMeta};
use csal_testkit::{Fault, FaultPlan, FaultProxy};

async fn setup(plan: FaultPlan) -> Option<(FaultProxy, StorageRouter)> {
    let endpoint = csal_conformance::require_env("CSAL_TEST_GCS_ENDPOINT", "gcs@fake-gcs-server (faults)", "gcs")?;
    let bucket = "csal-faults";
    let direct = csal_gcs::GcsModule::new(
        serde_json::from_value(serde_json::json!({ "bucket": bucket, "endpoint": endpoint })).unwrap(),
    )
    .unwrap();
    direct.create_bucket("csal-test").await.unwrap();
    let proxy = FaultProxy::start(&endpoint, plan).await.expect("proxy starts");
    let config = serde_json::json!({
        "bucket": bucket, "endpoint": proxy.url(), "chunk_size_kib": 256,
        "request_timeout_secs": 2, "read_timeout_secs": 2, "connect_timeout_secs": 2, "resume_attempts": 3,
    });
    let router = StorageRouter::new(&[InstanceDefinition::new("faulty", "gcs", config)], layers());
    Some((proxy, router))
}

csal_testkit::http_fault_tests!();
