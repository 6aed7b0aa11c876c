//! A large upload and download stream with bounded memory: this binary
//! holds one test, so the process's peak RSS (VmHWM) is this test's.
//! Size: `CSAL_TEST_LARGE_BYTES` (default 256 MiB). Default block size.

csal_core::link_providers!(csal_azure_blob);

use csal_core::{InstanceDefinition, StorageRouter};
use csal_testkit::memory::{large_size, round_trip_within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_and_download_keep_peak_memory_under_64_mib() {
    let label = "azure_blob (bounded memory)";
    let Some(endpoint) = csal_conformance::require_env("CSAL_TEST_AZURE_ENDPOINT", label, "azure_blob") else {
        return;
    };
    let account = csal_conformance::require_env("CSAL_TEST_AZURE_ACCOUNT", label, "azure_blob").unwrap();
    let key = csal_conformance::require_env("CSAL_TEST_AZURE_KEY", label, "azure_blob").unwrap();
    let config = serde_json::json!({
        "account": account, "container": "csal-bounded-memory", "endpoint": endpoint, "account_key": key,
    });
    csal_azure_blob::AzureBlobModule::new(serde_json::from_value(config.clone()).unwrap())
        .unwrap()
        .create_container()
        .await
        .unwrap();
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("m", "azure_blob", config)]);
    round_trip_within(&router, "m", large_size(256 << 20), 64).await;
}
