//! A large upload and download stream with bounded memory: this binary
//! holds one test, so the process's peak RSS (VmHWM) is this test's.
//! Size: `CSAL_TEST_LARGE_BYTES` (default 256 MiB; `cargo xtask bench`-style
//! runs can set 1 GiB). Uses the default chunk / block size (8 MiB).

csal_core::link_providers!(csal_azure_blob);

const PROVIDER: &str = "azure_blob";

use csal_core::{ByteStream, Bytes, StorageModule, WriteMeta};
use futures::StreamExt;

const LIMIT_KIB: u64 = 64 * 1024;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `size` bytes in 64 KiB chunks, unknown length, not replayable.
fn generated(size: u64) -> ByteStream {
    let chunk =
        Bytes::from((0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect::<Vec<u8>>());
    let full = size / chunk.len() as u64;
    let rest = (size % chunk.len() as u64) as usize;
    let stream = futures::stream::iter((0..full).map(move |_| Ok(chunk.clone())))
        .chain(futures::stream::iter((rest > 0).then(|| Ok(Bytes::from(vec![1u8; rest])))));
    ByteStream::new(stream, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_and_download_keep_peak_memory_under_64_mib() {
    let label = "azure_blob (bounded memory)";
    let Some(endpoint) = csal_conformance::require_env("CSAL_TEST_AZURE_ENDPOINT", label, "azure_blob") else {
        return;
    };
    let account = csal_conformance::require_env("CSAL_TEST_AZURE_ACCOUNT", label, "azure_blob").unwrap();
    let key = csal_conformance::require_env("CSAL_TEST_AZURE_KEY", label, "azure_blob").unwrap();
    let container = "csal-bounded-memory";
    create_container(&endpoint, &account, &key, container).await;
    let config =
        serde_json::json!({ "account": account, "container": container, "endpoint": endpoint, "account_key": key });
    let size: u64 = std::env::var("CSAL_TEST_LARGE_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(256 << 20);
    let router =
        csal_core::StorageRouter::from_definitions(&[csal_core::InstanceDefinition::new("m", PROVIDER, config)]);
    let module = router.module("m").unwrap();
    let started = std::time::Instant::now();
    let receipt = module.write(generated(size), WriteMeta::new("csal-bounded-memory/large.bin")).await.unwrap();
    assert_eq!(receipt.size, size);
    let upload = started.elapsed();
    let mut body = module.read(&receipt.object_id, None).await.unwrap();
    let (mut crc, mut seen) = (0u32, 0u64);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        crc = crc32c::crc32c_append(crc, &chunk);
        seen += chunk.len() as u64;
    }
    module.delete(&receipt.object_id).await.unwrap();
    assert_eq!(seen, size);
    assert_eq!(Some(csal_core::Checksum::crc32c(crc)), receipt.checksum, "downloaded bytes differ");
    let peak = peak_rss_kib();
    eprintln!(
        "bounded memory ({PROVIDER}): {} MiB up in {:.1} s, down in {:.1} s, peak RSS {} MiB",
        size >> 20,
        upload.as_secs_f64(),
        (started.elapsed() - upload).as_secs_f64(),
        peak / 1024
    );
    assert!(peak < LIMIT_KIB, "peak RSS {peak} KiB is over {LIMIT_KIB} KiB");
}

/// Create Container with a Shared Key request signed here (409 = exists).
async fn create_container(endpoint: &str, account: &str, key: &str, container: &str) {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let url = format!("{endpoint}/{container}?restype=container");
    let path = reqwest::Url::parse(&url).unwrap().path().to_owned();
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:2023-11-03\n/{account}{path}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD.decode(key).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let response = reqwest::Client::new()
        .put(url)
        .header("x-ms-date", date)
        .header("x-ms-version", "2023-11-03")
        .header("content-length", "0")
        .header("authorization", format!("SharedKey {account}:{sig}"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success() || response.status().as_u16() == 409, "{}", response.status());
}
