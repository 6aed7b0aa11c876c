//! Router and catalog overhead: the cost the router and its layers add to
//! one operation, and reloading a catalog of 1,000 instances while
//! operations are running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use csal_catalog::{Catalog, MasterKey, ModuleUpdate, NewModule};
use csal_core::{ByteStream, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};

use crate::Figure;

/// Dispatch overhead target per operation.
const DISPATCH_TARGET_US: f64 = 0.5;
/// Instances in the catalog reload benchmark.
pub const INSTANCES: usize = 1000;
/// A reload has to fit well inside the catalog's 1 s poll interval.
const RELOAD_TARGET_MS: f64 = 100.0;

/// `stat` on the memory provider, direct and through the router (all layers).
pub async fn dispatch_overhead() -> Result<Vec<Figure>> {
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("mem", "memory", serde_json::json!({}))]);
    let receipt = router.write("mem", ByteStream::from_bytes(vec![1u8; 16]), WriteMeta::new("k")).await?;
    let layered = router.module("mem")?;
    let direct: Arc<dyn StorageModule> = layered.inner().clone();
    const N: u32 = 200_000;
    let mut best_direct = Duration::MAX;
    let mut best_router = Duration::MAX;
    for _ in 0..5 {
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
    let per_direct = best_direct.as_secs_f64() * 1e6 / f64::from(N);
    let per_router = best_router.as_secs_f64() * 1e6 / f64::from(N);
    let overhead = per_router - per_direct;
    Ok(vec![Figure {
        name: "router dispatch overhead per op (memory stat through the router and all layers, minus direct)".into(),
        value: format!("{overhead:.2} us ({per_router:.2} vs {per_direct:.2} us)"),
        target: format!("< {DISPATCH_TARGET_US} us"),
        met: overhead < DISPATCH_TARGET_US,
    }])
}

/// Operations on the router while reloads happen: calls, failures, slowest.
#[derive(Default)]
struct Traffic {
    calls: AtomicU64,
    failures: AtomicU64,
    slowest_us: AtomicU64,
}

/// A body that sends its first chunk, then waits for `release` before the rest.
fn gated_body(release: tokio::sync::oneshot::Receiver<()>) -> ByteStream {
    let first = futures::stream::once(async { Ok(Bytes::from(vec![7u8; 64 * 1024])) });
    let rest = futures::stream::once(async move {
        let _ = release.await;
        Ok(Bytes::from(vec![8u8; 64 * 1024]))
    });
    ByteStream::new(futures::StreamExt::chain(first, rest), Some(128 * 1024))
}

/// Catalog (SQLite) with [`INSTANCES`] memory instances: time of a reload
/// with nothing changed and of an edit of one row (write + reload), while
/// writes and stats run on other instances and one write stays open across
/// the reloads on the instance being edited.
pub async fn catalog_reload() -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let url = dir.path().join("catalog.db").display().to_string();
    let catalog = Catalog::open(&url, MasterKey::Explicit(MasterKey::generate()?)).await?;
    let name = |i: usize| format!("cam-{i:04}");
    let created = Instant::now();
    for i in 0..INSTANCES {
        let new = NewModule {
            name: name(i),
            label: None,
            provider_type: "memory".into(),
            is_enabled: true,
            config: serde_json::json!({}),
        };
        catalog.create_module(new).await?;
    }
    let created = created.elapsed();
    let router = catalog.router();
    anyhow::ensure!(router.instances().len() == INSTANCES, "router has {} instances", router.instances().len());

    // Traffic on two instances that stay unchanged.
    let traffic = Arc::new(Traffic::default());
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (router, traffic, stop) = (router.clone(), traffic.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = if n.is_multiple_of(2) { "cam-0000" } else { "cam-0002" };
                let began = Instant::now();
                let ok = match router.write(key, ByteStream::from_bytes(vec![1u8; 4096]), WriteMeta::new("seg")).await {
                    Ok(r) => router.stat(key, &r.object_id).await.is_ok(),
                    Err(_) => false,
                };
                traffic.calls.fetch_add(2, Ordering::Relaxed);
                traffic.slowest_us.fetch_max(began.elapsed().as_micros() as u64, Ordering::Relaxed);
                if !ok {
                    traffic.failures.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
                tokio::task::yield_now().await;
            }
        })
    };
    // A write in progress on the instance that gets edited.
    let (release, gate) = tokio::sync::oneshot::channel();
    let open_write = {
        let router = router.clone();
        tokio::spawn(async move { router.write("cam-0001", gated_body(gate), WriteMeta::new("long")).await })
    };
    tokio::task::yield_now().await;

    let mut unchanged = Duration::MAX;
    for _ in 0..5 {
        let began = Instant::now();
        let summary = catalog.reload_router().await?;
        unchanged = unchanged.min(began.elapsed());
        anyhow::ensure!(summary.unchanged == INSTANCES, "a reload of an unchanged catalog changed {summary:?}");
    }
    let began = Instant::now();
    catalog
        .update_module("cam-0001", ModuleUpdate { label: Some(Some("edited".into())), config: None, is_enabled: None })
        .await?;
    let edit = began.elapsed();
    let _ = release.send(());
    let receipt = open_write.await??;
    stop.store(true, Ordering::Relaxed);
    load.await?;
    anyhow::ensure!(receipt.size == 128 * 1024, "the write held across the reload stored {} bytes", receipt.size);

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (calls, failures) = (traffic.calls.load(Ordering::Relaxed), traffic.failures.load(Ordering::Relaxed));
    Ok(vec![
        Figure {
            name: format!("catalog reload, {INSTANCES} instances, none changed (SQLite; the poller's case)"),
            value: format!("{:.1} ms", ms(unchanged)),
            target: format!("< {RELOAD_TARGET_MS:.0} ms"),
            met: ms(unchanged) < RELOAD_TARGET_MS,
        },
        Figure {
            name: format!("catalog edit of one of {INSTANCES} instances (transaction + reload)"),
            value: format!("{:.1} ms (creating all {INSTANCES}: {:.1} s)", ms(edit), created.as_secs_f64()),
            target: format!("< {RELOAD_TARGET_MS:.0} ms"),
            met: ms(edit) < RELOAD_TARGET_MS,
        },
        Figure {
            name: "operations failed during those reloads (writes + stats on other instances, one write open across the edit of its own instance)".into(),
            value: format!("{failures} of {calls} (slowest {:.1} ms)", traffic.slowest_us.load(Ordering::Relaxed) as f64 / 1000.0),
            target: "0".into(),
            met: failures == 0 && calls > 0,
        },
    ])
}
