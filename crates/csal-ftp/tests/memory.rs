//! Peak memory of a 1 GiB upload stays flat (own test binary = own process,
//! so VmHWM measures this upload alone).

csal_core::link_providers!(csal_ftp);

use csal_core::{InstanceDefinition, StorageRouter};
use csal_testkit::memory::{large_size, upload_within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_of_1_gib_keeps_peak_rss_under_64_mib() {
    let label = "ftp-rss";
    let Some(host) = csal_conformance::require_env("CSAL_TEST_FTP_HOST", label, "ftp") else { return };
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let len = large_size(1 << 30);
    let config = serde_json::json!({
        "host": host, "port": env("CSAL_TEST_FTPS_PORT").parse::<u16>().unwrap(),
        "username": env("CSAL_TEST_FTP_USER"), "password": env("CSAL_TEST_FTP_PASSWORD"),
        "security": "explicit_tls", "accept_invalid_certs": true, "base_dir": "csal-rss",
    });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("rss", "ftp", config)]);
    let receipt = upload_within(&router, "rss", len, 64).await;
    assert_eq!(router.stat("rss", &receipt.object_id).await.unwrap().size, len);
    router.delete("rss", &receipt.object_id).await.unwrap();
}
