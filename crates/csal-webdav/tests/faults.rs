//! csal-webdav under injected faults: the csal-testkit proxy sits between
//! the provider and wsgidav, and everything goes through a `StorageRouter`,
//! so the core retry and timeout layers are in the loop as in production.

csal_core::link_providers!(csal_webdav);

use bytes::Bytes;
use csal_core::{ByteStream, InstanceDefinition, ListRequest, StorageRouter, WriteMeta};
use csal_testkit::scenarios::{
    layers, plan, slow_down_is_retried_after_the_wait, writes_under_faults_read_back_or_fail_transient,
};
use csal_testkit::{Fault, FaultPlan, FaultProxy};

async fn setup(seed: u64) -> Option<(FaultProxy, StorageRouter)> {
    // Short deadlines: the random plan stalls answers past them.
    setup_with(plan(seed), 2).await
}

async fn setup_with(plan: FaultPlan, read_timeout_secs: u64) -> Option<(FaultProxy, StorageRouter)> {
    let url = csal_conformance::require_env("CSAL_TEST_WEBDAV_WSGIDAV_URL", "webdav-faults", "webdav")?;
    let user = std::env::var("CSAL_TEST_WEBDAV_WSGIDAV_USER").unwrap_or_default();
    let password = std::env::var("CSAL_TEST_WEBDAV_WSGIDAV_PASSWORD").unwrap_or_default();
    let upstream = url.trim_end_matches('/').to_owned();
    let proxy = FaultProxy::start(&upstream, plan).await.expect("proxy starts");
    let config = serde_json::json!({
        "url": format!("{}/", proxy.url()), "username": user, "password": password,
        "connect_timeout_secs": 2, "read_timeout_secs": read_timeout_secs,
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

/// Writes `bytes` into a folder that holds one object already (so its
/// collection is known and the write is one PUT and one MOVE), with
/// `faults` queued for those requests; the methods the proxy saw and the
/// ids the folder then lists, the new write's first.
async fn write_with_faults(replayable: bool, faults: [Fault; 2]) -> Option<(Vec<String>, Vec<String>)> {
    // No stalls queued: a deadline that a loaded CI machine's wsgidav can
    // meet (2 s timed out the first write's MKCOL there).
    let (proxy, router) = setup_with(FaultPlan::none(), 30).await?;
    let folder = csal_testkit::unique_folder("faults");
    let first = router.write("faulty", ByteStream::from_bytes(&b"first"[..]), WriteMeta::new(format!("{folder}/a")));
    let first = first.await.unwrap().object_id;
    let bytes = Bytes::from(vec![7u8; 100_000]);
    let body = match replayable {
        true => ByteStream::from_bytes(bytes.clone()),
        false => ByteStream::new(futures::stream::iter([Ok(bytes.clone())]), None),
    };
    proxy.clear_log();
    proxy.push_faults(faults);
    let receipt = router.write("faulty", body, WriteMeta::new(format!("{folder}/b.ts"))).await;
    let receipt = receipt.unwrap_or_else(|e| panic!("{faults:?} (replayable {replayable}) failed the write: {e}"));
    assert_eq!(receipt.size, bytes.len() as u64);
    let methods = proxy.log().into_iter().map(|r| r.method).collect();
    let back = router.read("faulty", &receipt.object_id, None).await.unwrap().collect_limited(1 << 20).await.unwrap();
    assert!(back == bytes, "reads back different");
    let page = router.list("faulty", &ListRequest::new(folder.as_str())).await.unwrap();
    let mut ids: Vec<String> = page.objects.into_iter().map(|o| o.object_id).filter(|id| *id != first).collect();
    ids.sort_by_key(|id| *id != receipt.object_id);
    for id in ids.iter().chain([&first]) {
        router.delete("faulty", id).await.unwrap();
    }
    Some((methods, ids))
}

// The MOVE that gives a write its name lands, but its answer is lost: a
// look finds the object, so the write succeeds once (the core would
// otherwise retry a replayable body under a new id and leave the first
// object behind, stored twice; a one-shot body's write failed).
#[tokio::test(flavor = "multi_thread")]
async fn a_move_whose_answer_was_lost_is_confirmed_and_stored_once() {
    for replayable in [false, true] {
        let Some((methods, ids)) = write_with_faults(replayable, [Fault::None, Fault::DropAnswer]).await else {
            return;
        };
        assert_eq!(methods, ["PUT", "MOVE", "PROPFIND"], "replayable {replayable}: the lost answer, one look");
        assert_eq!(ids.len(), 1, "replayable {replayable}: stored as {ids:?}");
    }
}

// A MOVE whose connection is reset is looked for (it may have landed) and,
// not found, sent again: the write succeeds without uploading again.
#[tokio::test(flavor = "multi_thread")]
async fn a_reset_move_is_sent_again() {
    let Some((methods, ids)) = write_with_faults(false, [Fault::None, Fault::Reset]).await else { return };
    assert_eq!(methods, ["PUT", "MOVE", "PROPFIND", "MOVE"]);
    assert_eq!(ids.len(), 1, "stored as {ids:?}");
}
