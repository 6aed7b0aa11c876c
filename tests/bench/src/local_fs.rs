//! local_fs throughput against plain tokio::fs, and router dispatch cost.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use csal_core::{ByteStream, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Figure;

/// A file of `size` bytes (not all zeros, so no filesystem can cheat).
pub async fn make_source(path: &Path, size: u64) -> Result<()> {
    let mut f = tokio::fs::File::create(path).await?;
    let block: Vec<u8> = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).await?;
        left -= n as u64;
    }
    f.sync_all().await?;
    Ok(())
}

/// Baseline: copy with tokio::fs (+ fsync, as local_fs does), then read it back.
async fn baseline(src: &Path, dst: &Path) -> Result<Duration> {
    let started = Instant::now();
    tokio::fs::copy(src, dst).await?;
    tokio::fs::File::open(dst).await?.sync_all().await?;
    let mut f = tokio::fs::File::open(dst).await?;
    let mut buf = vec![0u8; 256 * 1024];
    while f.read(&mut buf).await? > 0 {}
    let elapsed = started.elapsed();
    tokio::fs::remove_file(dst).await?;
    Ok(elapsed)
}

/// CSAL: write the file through the router into local_fs, then read it back.
async fn through_csal(router: &StorageRouter, src: &Path) -> Result<Duration> {
    let started = Instant::now();
    let receipt = router.write("bench", ByteStream::from_file(src).await?, WriteMeta::new("bench/big.bin")).await?;
    let mut body = router.read("bench", &receipt.object_id, None).await?;
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        total += chunk?.len() as u64;
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(total == receipt.size, "read back {total} of {} bytes", receipt.size);
    router.delete("bench", &receipt.object_id).await?;
    Ok(elapsed)
}

pub async fn throughput(size: u64) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir_in(std::env::current_dir()?.join("target"))?;
    let src = dir.path().join("source.bin");
    make_source(&src, size).await?;
    let root = dir.path().join("store");
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new(
        "bench",
        "local_fs",
        serde_json::json!({ "root": root, "min_free_mb": 0 }),
    )]);
    // Alternate, best of three each, so cache warm-up favours neither side.
    let (mut base, mut csal) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        base = base.min(baseline(&src, &dir.path().join("copy.bin")).await?);
        csal = csal.min(through_csal(&router, &src).await?);
    }
    let ratio = base.as_secs_f64() / csal.as_secs_f64();
    let mib = size as f64 / (1024.0 * 1024.0);
    Ok(vec![Figure {
        name: format!("local_fs write+read {} MiB vs tokio::fs copy+read", size >> 20),
        value: format!(
            "{ratio:.2}x ({:.0} vs {:.0} MiB/s)",
            2.0 * mib / csal.as_secs_f64(),
            2.0 * mib / base.as_secs_f64()
        ),
        target: ">= 0.90x".into(),
        met: ratio >= 0.9,
    }])
}

pub async fn dispatch_overhead() -> Result<Vec<Figure>> {
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("mem", "memory", serde_json::json!({}))]);
    let receipt = router.write("mem", ByteStream::from_bytes(vec![1u8; 16]), WriteMeta::new("k")).await?;
    let layered = router.module("mem")?;
    let direct: Arc<dyn StorageModule> = layered.inner().clone();
    const N: u32 = 200_000;
    let mut best_direct = Duration::MAX;
    let mut best_router = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        for _ in 0..N {
            std::hint::black_box(direct.stat(&receipt.object_id).await?);
        }
        best_direct = best_direct.min(started.elapsed());
        let started = Instant::now();
        for _ in 0..N {
            std::hint::black_box(router.stat("mem", &receipt.object_id).await?);
        }
        best_router = best_router.min(started.elapsed());
    }
    let per_direct = best_direct.as_secs_f64() * 1e6 / N as f64;
    let per_router = best_router.as_secs_f64() * 1e6 / N as f64;
    let overhead = per_router - per_direct;
    Ok(vec![Figure {
        name: "router dispatch overhead per op (memory stat, all layers)".into(),
        value: format!("{overhead:.2} us ({per_router:.2} vs {per_direct:.2} us)"),
        target: "< 2 us".into(),
        met: overhead < 2.0,
    }])
}
