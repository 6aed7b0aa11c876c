//! csal-s3 under injected faults: the csal-testkit proxy sits between the
//! provider and moto, and everything goes through a `StorageRouter`, so the
//! core retry and timeout layers are in the loop as in production.

csal_core::link_providers!(csal_s3);

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{BUCKET, Server};
use csal_core::{ByteStream, ErrorClass, InstanceDefinition, LayerConfig, StorageRouter, WriteMeta};
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

/// A one-shot body (a recorder segment from a socket) that fits in one part.
fn one_shot(bytes: &Bytes) -> ByteStream {
    let chunks: Vec<csal_core::Result<Bytes>> =
        bytes.chunks(256 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    ByteStream::new(futures::stream::iter(chunks), Some(bytes.len() as u64))
}

fn segment() -> Bytes {
    Bytes::from((0..1_048_576u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect::<Vec<u8>>())
}

fn puts(proxy: &FaultProxy) -> usize {
    proxy.log().iter().filter(|r| r.method == "PUT").count()
}

// The core layer cannot replay a one-shot body, so before csal-s3 resent its
// in-memory single PUT itself, one reset failed the caller's write.
#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_segment_survives_a_reset_and_a_slow_down() {
    let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
    let bytes = segment();
    for fault in [Fault::Reset, Fault::SlowDown { retry_after_secs: 1 }] {
        proxy.clear_log();
        proxy.push_faults([fault]);
        let receipt = router.write("faulty", one_shot(&bytes), WriteMeta::new("faults/segment.ts")).await.unwrap();
        assert_eq!(receipt.size, bytes.len() as u64);
        assert_eq!(puts(&proxy), 2, "{fault:?}: one refused PUT and one resent");
        let back = router.read("faulty", &receipt.object_id, None).await.unwrap().collect_limited(2 << 20).await;
        assert!(back.unwrap() == bytes, "{fault:?}: the segment reads back different");
        router.delete("faulty", &receipt.object_id).await.unwrap();
    }
}

// Three faults in a row on one segment: with three attempts it failed the
// caller (once in 16,691 writes of the bench's recorder load at 1 % faults).
#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_segment_survives_three_faults_in_a_row() {
    let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
    let bytes = segment();
    proxy.push_faults([Fault::Reset, Fault::SlowDown { retry_after_secs: 1 }, Fault::Reset]);
    let receipt = router.write("faulty", one_shot(&bytes), WriteMeta::new("faults/thrice.ts")).await.unwrap();
    assert_eq!(puts(&proxy), 4, "three refused PUTs and one that landed");
    let back = router.read("faulty", &receipt.object_id, None).await.unwrap().collect_limited(2 << 20).await;
    assert!(back.unwrap() == bytes, "the segment reads back different");
    router.delete("faulty", &receipt.object_id).await.unwrap();
}

// The first PUT lands but its answer is lost: the resend is refused (the key
// exists, If-None-Match) or overwrites the same bytes; either way the write
// succeeds once, with the bytes that were sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_one_shot_segment_whose_answer_was_lost_is_not_failed() {
    let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
    let bytes = segment();
    proxy.push_faults([Fault::DropAnswer]);
    let receipt = router.write("faulty", one_shot(&bytes), WriteMeta::new("faults/lost.ts")).await.unwrap();
    assert_eq!(receipt.size, bytes.len() as u64);
    assert!(puts(&proxy) >= 2, "the lost answer was not resent");
    let back = router.read("faulty", &receipt.object_id, None).await.unwrap().collect_limited(2 << 20).await;
    assert!(back.unwrap() == bytes);
    router.delete("faulty", &receipt.object_id).await.unwrap();
}

fn gets(proxy: &FaultProxy) -> usize {
    proxy.log().iter().filter(|r| r.method == "GET").count()
}

// A read longer than 4 MiB comes as ranged GETs, several at once; one of
// them cut off or reset is fetched again on its own, and the whole read still
// gives the bytes that were written (a single GET failed the read).
#[tokio::test(flavor = "multi_thread")]
async fn a_large_read_in_ranges_refetches_a_range_that_was_cut_off() {
    let Some((proxy, router)) = setup(FaultPlan::none()).await else { return };
    let bytes = csal_testkit::scenarios::data(3 * 5 * 1024 * 1024 + 17, 7);
    let receipt = router
        .write("faulty", ByteStream::from_bytes(bytes.clone()), WriteMeta::new("faults/large.bin"))
        .await
        .unwrap();
    for fault in [Fault::Truncate, Fault::Reset] {
        proxy.clear_log();
        // The first GET (first range, and the object's length) passes; a range after it breaks.
        proxy.push_faults([Fault::None, fault]);
        let back = router.read("faulty", &receipt.object_id, None).await.unwrap().collect_limited(bytes.len()).await;
        assert!(back.unwrap() == bytes, "{fault:?}: the object reads back different");
        assert_eq!(gets(&proxy), 5, "{fault:?}: the first range, three more and one again");
    }
    // Ranges asked for by the caller are cut the same way.
    proxy.clear_log();
    let (start, end) = (4 * 1024 * 1024 + 3, 13 * 1024 * 1024 + 5);
    let part = router
        .read("faulty", &receipt.object_id, Some(csal_core::ByteRange::inclusive(start as u64, end as u64)))
        .await
        .unwrap()
        .collect_limited(bytes.len())
        .await
        .unwrap();
    assert!(part == bytes.slice(start..=end));
    assert_eq!(gets(&proxy), 3, "9 MiB in 4 MiB ranges: three ranged GETs");
    let tail = router
        .read("faulty", &receipt.object_id, Some(csal_core::ByteRange::from(11 * 1024 * 1024)))
        .await
        .unwrap()
        .collect_limited(bytes.len())
        .await
        .unwrap();
    assert!(tail == bytes.slice(11 * 1024 * 1024..));
    router.delete("faulty", &receipt.object_id).await.unwrap();
}
