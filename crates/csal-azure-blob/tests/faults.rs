//! csal-azure-blob under injected faults: the csal-testkit proxy sits
//! between the provider and Azurite (Shared Key signs the path, not the
//! host, so signatures still verify), and everything goes through a
//! `StorageRouter`, so the core retry and timeout layers are in the loop.

csal_core::link_providers!(csal_azure_blob);

use std::time::{Duration, Instant};

use bytes::Bytes;
use csal_core::{ByteStream, ErrorClass, InstanceDefinition, LayerConfig, StorageRouter, WriteMeta};
use csal_testkit::{Fault, FaultPlan, FaultProxy};

async fn setup(plan: FaultPlan) -> Option<(FaultProxy, StorageRouter)> {
    let label = "azure_blob@azurite (faults)";
    let endpoint = csal_conformance::require_env("CSAL_TEST_AZURE_ENDPOINT", label, "azure_blob")?;
    let account = csal_conformance::require_env("CSAL_TEST_AZURE_ACCOUNT", label, "azure_blob")?;
    let key = csal_conformance::require_env("CSAL_TEST_AZURE_KEY", label, "azure_blob")?;
    let url = reqwest::Url::parse(&endpoint).unwrap();
    let container = "csal-faults-proxy";
    let config = |endpoint: String| {
        serde_json::json!({
            "account": account, "container": container, "endpoint": endpoint, "account_key": key,
            "block_size_kib": 256, "request_timeout_secs": 2, "read_timeout_secs": 2, "connect_timeout_secs": 2,
            "block_attempts": 3,
        })
    };
    let direct =
        csal_azure_blob::AzureBlobModule::new(serde_json::from_value(config(endpoint.clone())).unwrap()).unwrap();
    direct.create_container().await.unwrap();
    let upstream = format!("http://{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let proxy = FaultProxy::start(&upstream, plan).await.expect("proxy starts");
    let proxied = format!("{}{}", proxy.url(), url.path());
    let router = StorageRouter::new(&[InstanceDefinition::new("faulty", "azure_blob", config(proxied))], layers());
    Some((proxy, router))
}

/// A staged block whose connection is reset (or answered 500) is sent
/// again with the same block id while other blocks are in flight; the
/// non-replayable body still arrives whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_block_upload_is_sent_again_with_the_same_id() {
    let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
    let bytes = data(1_300_000, 42);
    proxy.push_faults([Fault::None, Fault::Reset, Fault::None, Fault::InternalError]);
    let receipt = router.write("faulty", unreplayable(&bytes), WriteMeta::new("faults/blocks.bin")).await.unwrap();
    let puts: Vec<_> = proxy.log().into_iter().filter(|r| r.path_and_query.contains("comp=block&")).collect();
    assert!(puts.len() >= 7, "expected 5 blocks + 2 resends, saw {} block PUTs", puts.len());
    // Blocks go up several at a time, so a resend need not be the next request.
    for fault in [Fault::Reset, Fault::InternalError] {
        let failed = puts.iter().position(|r| r.fault == fault).expect("a block PUT met the fault");
        let again = &puts[failed + 1..];
        assert!(
            again.iter().any(|r| r.fault == Fault::None && r.path_and_query == puts[failed].path_and_query),
            "the block that met {fault:?} was not sent again with its id"
        );
    }
    assert!(read_all(&router, &receipt.object_id).await.unwrap() == bytes, "bytes differ after resent blocks");
    router.delete("faulty", &receipt.object_id).await.unwrap();
}

csal_testkit::http_fault_tests!();

fn count(proxy: &FaultProxy, method: &str, pick: impl Fn(&str) -> bool) -> usize {
    proxy.log().iter().filter(|r| r.method == method && pick(&r.path_and_query)).count()
}

// The block list commit fails: the blocks are staged, so it is sent again
// (a 503 there failed the whole write), and one whose answer was lost is
// found with a HEAD. Five blocks, then the commit as the sixth request.
#[tokio::test(flavor = "multi_thread")]
async fn a_block_list_commit_that_fails_is_resent_or_confirmed() {
    let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
    let bytes = data(1_300_000, 7);
    for (fault, commits, looked) in
        [(Fault::SlowDown { retry_after_secs: 1 }, 2, 0), (Fault::Reset, 2, 1), (Fault::DropAnswer, 1, 1)]
    {
        proxy.clear_log();
        proxy.push_faults([Fault::None, Fault::None, Fault::None, Fault::None, Fault::None, fault]);
        let folder = csal_testkit::unique_folder("faults");
        let receipt = router.write("faulty", unreplayable(&bytes), WriteMeta::new(format!("{folder}/big.ts"))).await;
        let receipt = receipt.unwrap_or_else(|e| panic!("{fault:?} on the commit failed the write: {e}"));
        let log = proxy.log();
        assert!(log[5].fault == fault && log[5].path_and_query.contains("comp=blocklist"), "{:?}", log[5]);
        let committed = count(&proxy, "PUT", |path| path.contains("comp=blocklist"));
        assert_eq!((committed, count(&proxy, "HEAD", |_| true)), (commits, looked), "{fault:?}");
        assert_eq!(listed(&router, &folder).await, [receipt.object_id.as_str()], "{fault:?}");
        assert!(read_all(&router, &receipt.object_id).await.unwrap() == bytes, "{fault:?}: reads back different");
        router.delete("faulty", &receipt.object_id).await.unwrap();
    }
}
