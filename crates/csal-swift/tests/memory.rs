//! Peak memory (VmHWM of this test process, which runs only this test)
//! while 1 GiB of unknown size streams through the provider and back.

csal_core::link_providers!(csal_swift);

use csal_core::{ByteStream, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
use futures::StreamExt;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()).expect("kB") / 1024.0
}

async fn stream_one_gib(provider: &str, config: serde_json::Value) {
    let size: u64 = std::env::var("CSAL_TEST_RSS_BYTES").ok().and_then(|s| s.parse().ok()).unwrap_or(1 << 30);
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("rss", provider, config)]);
    let m = router.module("rss").expect("instance loads");
    const CHUNK: u64 = 256 * 1024;
    let block = bytes::Bytes::from((0..CHUNK).map(|i| (i % 249) as u8).collect::<Vec<u8>>());
    let body = futures::stream::iter(
        (0..size.div_ceil(CHUNK)).map(move |i| Ok(block.slice(..CHUNK.min(size - i * CHUNK) as usize))),
    );
    let receipt = m.write(ByteStream::new(body, None), WriteMeta::new("rss/one-gib.bin")).await.expect("write");
    assert_eq!(receipt.size, size);
    let mut read = m.read(&receipt.object_id, None).await.expect("read");
    let mut total = 0u64;
    while let Some(chunk) = read.next().await {
        total += chunk.expect("chunk").len() as u64;
    }
    assert_eq!(total, size);
    m.delete(&receipt.object_id).await.expect("delete");
    let peak = peak_rss_mib();
    eprintln!("{provider}: peak RSS {peak:.1} MiB streaming {} MiB in and out", size >> 20);
    assert!(peak < 64.0, "peak RSS {peak:.1} MiB >= 64 MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_through_swift_keeps_peak_rss_under_64_mib() {
    let Some(auth_url) = csal_conformance::require_env("CSAL_TEST_SWIFT_AUTH_URL", "swift-rss", "swift") else {
        return;
    };
    let user = std::env::var("CSAL_TEST_SWIFT_USER").unwrap_or_default();
    let key = std::env::var("CSAL_TEST_SWIFT_KEY").unwrap_or_default();
    // Default segment size (16 MiB): 64 segments plus a manifest.
    let config =
        serde_json::json!({ "auth_url": auth_url, "username": user, "password": key, "container": "csal-rss" });
    stream_one_gib("swift", config).await;
}
