//! S3 throughput and memory: csal-s3 against raw aws-sdk-s3 calls, same
//! server, same run, printed as ratios.
//!
//! ```text
//! cargo xtask emulators run s3s-fs -- cargo bench -p csal-s3 --bench s3_upload
//! ```
//!
//! Env: `CSAL_TEST_S3_S3SFS_ENDPOINT` / `_ACCESS_KEY` / `_SECRET_KEY` (as
//! exported by xtask's s3s-fs emulator), `CSAL_BENCH_SIZE` (bytes, default
//! 1 GiB), `CSAL_BENCH_MARKDOWN` (append a Markdown table to this file).
//!
//! Order: csal upload first (peak RSS read right after it, before anything
//! else has grown the heap), then raw SDK upload, then both downloads.
//! Bodies are generated on the fly, never held whole in memory.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream as SdkBody;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use csal_core::{ByteStream, StorageModule, WriteMeta};
use csal_s3::{S3Config, S3Module};
use futures::StreamExt;

const BUCKET: &str = "csal-bench";
const PART_MB: u64 = 8;
const CONCURRENCY: usize = 4;
const CHUNK: usize = 256 * 1024;

fn generated(size: u64) -> ByteStream {
    let chunk = Bytes::from((0..CHUNK).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>());
    let full = size / CHUNK as u64;
    let rest = (size % CHUNK as u64) as usize;
    let tail = chunk.slice(..rest);
    let stream = futures::stream::iter((0..full).map(move |_| Ok::<_, csal_core::StorageError>(chunk.clone())))
        .chain(futures::stream::iter((rest > 0).then(|| Ok(tail))));
    ByteStream::new(stream, Some(size))
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak_rss() {
    // Linux: writing 5 to clear_refs resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mib_s(size: u64, d: Duration) -> f64 {
    size as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

async fn raw_upload(sdk: &aws_sdk_s3::Client, key: &str, size: u64) -> Duration {
    let started = Instant::now();
    let created = sdk.create_multipart_upload().bucket(BUCKET).key(key).send().await.expect("create");
    let upload_id = created.upload_id().expect("upload id").to_owned();
    let parts = generated(size).into_parts((PART_MB << 20) as usize);
    let completed: Vec<CompletedPart> = parts
        .enumerate()
        .map(|(i, part)| {
            let (sdk, upload_id) = (sdk.clone(), upload_id.clone());
            async move {
                let part = part.expect("generated part");
                let n = i as i32 + 1;
                let out = sdk
                    .upload_part()
                    .bucket(BUCKET)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(n)
                    .body(SdkBody::from(part))
                    .send()
                    .await
                    .expect("upload part");
                CompletedPart::builder().part_number(n).e_tag(out.e_tag().unwrap_or_default()).build()
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    sdk.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build())
        .send()
        .await
        .expect("complete");
    started.elapsed()
}

async fn raw_download(sdk: &aws_sdk_s3::Client, key: &str) -> (Duration, u64) {
    let started = Instant::now();
    let mut body = sdk.get_object().bucket(BUCKET).key(key).send().await.expect("get").body;
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        n += chunk.expect("chunk").len() as u64;
    }
    (started.elapsed(), n)
}

async fn csal_download(module: &S3Module, id: &str) -> (Duration, u64) {
    let started = Instant::now();
    let mut body = module.read(id, None).await.expect("read");
    let mut n = 0u64;
    while let Some(chunk) = body.next().await {
        n += chunk.expect("chunk").len() as u64;
    }
    (started.elapsed(), n)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Ok(endpoint) = std::env::var("CSAL_TEST_S3_S3SFS_ENDPOINT") else {
        eprintln!("s3 bench: CSAL_TEST_S3_S3SFS_ENDPOINT not set; run it under `cargo xtask emulators run s3s-fs --`");
        return;
    };
    let size: u64 = std::env::var("CSAL_BENCH_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(1 << 30);
    let mut config = S3Config::new(BUCKET);
    config.endpoint = Some(endpoint);
    config.access_key = std::env::var("CSAL_TEST_S3_S3SFS_ACCESS_KEY").ok();
    config.secret_key = std::env::var("CSAL_TEST_S3_S3SFS_SECRET_KEY").ok().map(Into::into);
    config.force_path_style = true;
    config.part_size_mb = PART_MB;
    config.upload_concurrency = CONCURRENCY;
    config.request_timeout_secs = 600;
    let module = S3Module::new(config).expect("config");
    let sdk = module.sdk_client().clone();
    let _ = sdk.create_bucket().bucket(BUCKET).send().await;

    reset_peak_rss();
    let rss_before = peak_rss_kib().unwrap_or(0);
    let started = Instant::now();
    let receipt = module.write(generated(size), WriteMeta::new("bench/csal.bin")).await.expect("csal upload");
    let csal_up = started.elapsed();
    let csal_peak = peak_rss_kib().unwrap_or(0);
    assert_eq!(receipt.size, size);

    let raw_key = "bench/raw.bin";
    let raw_up = raw_upload(&sdk, raw_key, size).await;
    let (csal_down, n1) = csal_download(&module, &receipt.object_id).await;
    let (raw_down, n2) = raw_download(&sdk, raw_key).await;
    assert_eq!((n1, n2), (size, size));
    let _ = module.delete(&receipt.object_id).await;
    let _ = sdk.delete_object().bucket(BUCKET).key(raw_key).send().await;

    let gib = size as f64 / (1u64 << 30) as f64;
    let table = format!(
        "## S3 (csal-s3 vs raw aws-sdk-s3, s3s-fs on 127.0.0.1, {gib:.2} GiB, {PART_MB} MiB parts x {CONCURRENCY})\n\n\
         | operation | csal-s3 | raw aws-sdk-s3 | ratio (csal / raw time) |\n|---|---|---|---|\n\
         | upload | {:.1} MiB/s | {:.1} MiB/s | {:.2} |\n\
         | download | {:.1} MiB/s | {:.1} MiB/s | {:.2} |\n\n\
         Peak RSS of the process during the csal-s3 upload: {:.1} MiB (before it: {:.1} MiB; target <= 64 MiB).\n",
        mib_s(size, csal_up),
        mib_s(size, raw_up),
        csal_up.as_secs_f64() / raw_up.as_secs_f64(),
        mib_s(size, csal_down),
        mib_s(size, raw_down),
        csal_down.as_secs_f64() / raw_down.as_secs_f64(),
        csal_peak as f64 / 1024.0,
        rss_before as f64 / 1024.0,
    );
    println!("{table}");
    if let Ok(path) = std::env::var("CSAL_BENCH_MARKDOWN") {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("markdown file");
        writeln!(f, "{table}").expect("write markdown");
    }
}
