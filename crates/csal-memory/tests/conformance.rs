//! The shared conformance suite on the `memory` provider.

csal_core::link_providers!(csal_memory);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_passes_conformance() {
    let target = csal_conformance::Target::new("memory", "memory", serde_json::json!({}));
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread")]
async fn capacity_limit_gives_quota_exceeded() {
    use csal_core::{ByteStream, ErrorKind, InstanceDefinition, StorageRouter, WriteMeta};
    let def = InstanceDefinition::new("small", "memory", serde_json::json!({ "max_bytes": 100 }));
    let router = StorageRouter::from_definitions(&[def]);
    router.write("small", ByteStream::from_bytes(vec![0u8; 60]), WriteMeta::new("a")).await.unwrap();
    let err = router.write("small", ByteStream::from_bytes(vec![0u8; 60]), WriteMeta::new("b")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
}
