//! Peak memory of a 1 GiB upload stays flat (own test binary = own process,
//! so VmHWM measures this upload alone).

csal_core::link_providers!(csal_ftp);

use csal_core::{ByteStream, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
use futures::StreamExt;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn generated(len: u64) -> ByteStream {
    let chunk = 256 * 1024u64;
    let block = bytes::Bytes::from((0..chunk).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
    let stream = futures::stream::iter(0..len.div_ceil(chunk))
        .map(move |i| Ok(block.slice(0..chunk.min(len - i * chunk) as usize)));
    ByteStream::new(stream, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_of_1_gib_keeps_peak_rss_under_64_mib() {
    let label = "ftp-rss";
    let Some(host) = csal_conformance::require_env("CSAL_TEST_FTP_HOST", label, "ftp") else { return };
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let len: u64 = std::env::var("CSAL_RSS_TEST_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 30);
    let config = serde_json::json!({
        "host": host, "port": env("CSAL_TEST_FTPS_PORT").parse::<u16>().unwrap(),
        "username": env("CSAL_TEST_FTP_USER"), "password": env("CSAL_TEST_FTP_PASSWORD"),
        "security": "explicit_tls", "accept_invalid_certs": true, "base_dir": "csal-rss",
    });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("rss", "ftp", config)]);
    let m = router.module("rss").unwrap();
    let started = std::time::Instant::now();
    let receipt = m.write(generated(len), WriteMeta::new("big.bin")).await.unwrap();
    assert_eq!(receipt.size, len);
    let peak = peak_rss_kib();
    eprintln!(
        "ftp: uploaded {} MiB in {:.1} s, peak RSS {} MiB",
        len >> 20,
        started.elapsed().as_secs_f64(),
        peak / 1024
    );
    assert_eq!(m.stat(&receipt.object_id).await.unwrap().size, len);
    m.delete(&receipt.object_id).await.unwrap();
    assert!(peak > 0 && peak < 64 * 1024, "peak RSS {} KiB is not under 64 MiB", peak);
}
