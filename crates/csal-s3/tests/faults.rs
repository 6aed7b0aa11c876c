//! csal-s3 under injected faults: the csal-testkit proxy sits between the
//! provider and moto, and everything goes through a `StorageRouter`, so the
//! core retry and timeout layers are in the loop as in production.

csal_core::link_providers!(csal_s3);

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{BUCKET, Server};
use csal_core::{
    ByteStream, ErrorClass, InstanceDefinition, LayerConfig, RetryPolicy, StorageRouter, TimeoutPolicy, WriteMeta,
};
use csal_testkit::{Fault, FaultPlan, FaultProxy};

async fn setup(plan: FaultPlan) -> Option<(FaultProxy, StorageRouter)> {
    let server = Server::moto()?;
    server.ensure_bucket(BUCKET).await;
    let proxy = FaultProxy::start(&server.endpoint, plan).await.expect("proxy starts");
    let mut config = server.config(BUCKET);
    config["endpoint"] = serde_json::json!(proxy.url());
    config["request_timeout_secs"] = serde_json::json!(2);
    config["read_timeout_secs"] = serde_json::json!(2);
    config["connect_timeout_secs"] = serde_json::json!(2);
    let router = StorageRouter::new(&[InstanceDefinition::new("faulty", "s3", config)], layers());
    Some((proxy, router))
}

// Two parts of 5 MiB (csal-s3's smallest) make the large objects multipart.
csal_testkit::http_fault_tests!(large_len = 6 * 1024 * 1024 + 17);
