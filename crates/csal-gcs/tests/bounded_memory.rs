//! A large upload and download stream with bounded memory: this binary
//! holds one test, so the process's peak RSS (VmHWM) is this test's.
//! Size: `CSAL_TEST_LARGE_BYTES` (default 256 MiB). Default chunk size.

csal_core::link_providers!(csal_gcs);

use csal_core::{InstanceDefinition, StorageRouter};
use csal_testkit::memory::{large_size, round_trip_within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_and_download_keep_peak_memory_under_64_mib() {
    let Some(endpoint) = csal_conformance::require_env("CSAL_TEST_GCS_ENDPOINT", "gcs (bounded memory)", "gcs") else {
        return;
    };
    let config = serde_json::json!({ "bucket": "csal-bounded-memory", "endpoint": endpoint });
    csal_gcs::GcsModule::new(serde_json::from_value(config.clone()).unwrap())
        .unwrap()
        .create_bucket("csal-test")
        .await
        .unwrap();
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("m", "gcs", config)]);
    round_trip_within(&router, "m", large_size(256 << 20), 64).await;
}
