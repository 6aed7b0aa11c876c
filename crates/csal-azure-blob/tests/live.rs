//! The conformance suite against a real Azure storage account, only when
//! credentials are given (prints SKIP otherwise):
//!
//! - `CSAL_LIVE_AZURE_ACCOUNT`, `CSAL_LIVE_AZURE_KEY` (base64 account key),
//!   `CSAL_LIVE_AZURE_CONTAINER` (an existing container).
//!
//! Objects go under `csal-conformance/<run>/` and are deleted afterwards.

csal_core::link_providers!(csal_azure_blob);

use base64::Engine as _;

fn live() -> Option<(String, String, String)> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (get("CSAL_LIVE_AZURE_ACCOUNT"), get("CSAL_LIVE_AZURE_KEY"), get("CSAL_LIVE_AZURE_CONTAINER")) {
        (Some(a), Some(k), Some(c)) => Some((a, k, c)),
        _ => {
            eprintln!(
                "SKIP azure_blob@live: set CSAL_LIVE_AZURE_ACCOUNT, CSAL_LIVE_AZURE_KEY and CSAL_LIVE_AZURE_CONTAINER"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_blob_passes_conformance_on_real_azure() {
    let Some((account, key, container)) = live() else { return };
    let cfg = |key: &str| serde_json::json!({ "account": account, "container": container, "account_key": key, "block_size_kib": 512 });
    let wrong = base64::engine::general_purpose::STANDARD.encode([5u8; 64]);
    let target = csal_conformance::Target::new("azure_blob@live", "azure_blob", cfg(&key))
        .large_size(3 * 512 * 1024 + 12_345)
        .list_objects(120)
        .bad_credentials(cfg(&wrong));
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread")]
async fn sas_url_reads_the_object_on_real_azure() {
    use csal_core::{ByteStream, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
    let Some((account, key, container)) = live() else { return };
    let cfg = serde_json::json!({ "account": account, "container": container, "account_key": key });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("a", "azure_blob", cfg)]);
    let data = bytes::Bytes::from_static(b"csal live sas url");
    let receipt = router
        .write("a", ByteStream::from_bytes(data.clone()), WriteMeta::new("csal-conformance/live/sas url+1.bin"))
        .await
        .unwrap();
    let module = router.module("a").unwrap();
    let url = module.presign_read(&receipt.object_id, std::time::Duration::from_secs(120)).await.unwrap();
    let response = reqwest::get(&url).await.unwrap();
    let status = response.status();
    let body = response.bytes().await.unwrap();
    module.delete(&receipt.object_id).await.unwrap();
    assert_eq!(status.as_u16(), 200, "GET SAS URL");
    assert_eq!(body, data);
}
