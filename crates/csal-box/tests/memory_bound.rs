//! Issue 9 "done when": uploading 1 GiB keeps peak RSS under 64 MiB. The
//! fake runs in this process in discarding mode (it checks every part's
//! and the whole file's SHA-1 but keeps no bytes), so the process's peak
//! RSS (VmHWM) measures the client, with Box's own part size (8 MiB). One
//! test per binary, so no other test inflates the peak.
//! CSAL_RSS_TEST_BYTES overrides the size.

csal_core::link_providers!(csal_box);

use csal_core::{ByteStream, InstanceDefinition, StorageRouter, WriteMeta};
use csal_fakes::boxapi::{BOX_PART_SIZE, CLIENT_ID, CLIENT_SECRET, FakeBox, REFRESH_TOKEN};

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
    let fake = FakeBox::start_discarding().await;
    fake.set_session_limits(20_000_000, BOX_PART_SIZE);
    let config = serde_json::json!({
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH_TOKEN,
        "api_url": fake.api_url(), "upload_url": fake.upload_url(), "token_url": fake.token_url(),
    });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("b", "box", config)]);
    let chunk = bytes::Bytes::from(vec![0x5au8; 256 * 1024]);
    let count = total / chunk.len() as u64;
    let size = count * chunk.len() as u64;
    let body = ByteStream::new(futures::stream::iter((0..count).map(move |_| Ok(chunk.clone()))), Some(size));
    let receipt = router.write("b", body, WriteMeta::new("big.bin")).await.unwrap();
    assert_eq!(receipt.size, size);
    assert_eq!(fake.parts(), size.div_ceil(BOX_PART_SIZE));
    assert_eq!(fake.commits(), 1);
    let peak = peak_rss_kib().unwrap();
    eprintln!("peak RSS {} MiB (before upload {} MiB)", peak / 1024, before / 1024);
    assert!(peak < 64 * 1024, "peak RSS {} MiB >= 64 MiB", peak / 1024);
}
