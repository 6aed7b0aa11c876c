//! Issue 9 "done when": uploading 1 GiB keeps peak RSS under 64 MiB. The
//! fake runs in this process in discarding mode (it keeps sizes only), so
//! the process's peak RSS (VmHWM) measures the client. One test per binary,
//! so no other test inflates the peak. CSAL_RSS_TEST_BYTES overrides the size.

csal_core::link_providers!(csal_pcloud);

use csal_core::{ByteStream, InstanceDefinition, StorageRouter, WriteMeta};

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_1_gib_keeps_peak_rss_under_64_mib() {
    let Some(before) = peak_rss_kib() else {
        eprintln!("SKIP: no /proc/self/status VmHWM on this platform");
        return;
    };
    let total: u64 = std::env::var("CSAL_RSS_TEST_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 30);
    let fake = csal_fakes::pcloud::PcloudFake::start_discarding().await;
    let config = serde_json::json!({
        "api_url": fake.url(), "access_token": csal_fakes::pcloud::ACCESS_TOKEN,
    });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("p", "pcloud", config)]);
    let chunk = bytes::Bytes::from(vec![0x5au8; 256 * 1024]);
    let count = total / chunk.len() as u64;
    let body = ByteStream::new(futures::stream::iter((0..count).map(move |_| Ok(chunk.clone()))), None);
    let receipt = router.write("p", body, WriteMeta::new("big.bin")).await.unwrap();
    assert_eq!(receipt.size, count * 256 * 1024);
    let peak = peak_rss_kib().unwrap();
    eprintln!("peak RSS {} MiB (before upload {} MiB)", peak / 1024, before / 1024);
    assert!(peak < 64 * 1024, "peak RSS {} MiB >= 64 MiB", peak / 1024);
}
