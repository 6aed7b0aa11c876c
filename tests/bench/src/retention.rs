//! Retention at scale (issue 20): the real sweep (`csal_spool::retention`)
//! over 1,000,000 indexed segments on local_fs, with a fake clock.
//!
//! Four cameras of 10 s segments (250,000 each, about 29 days), one
//! local_fs target, `retention_days` 3: about nine in ten segments expire.
//! Set-up is not what is measured: rows go in through the catalog's bulk
//! path ([`Catalog::index_stored_segments`], the same rows a delivery
//! writes) and each object is a hard link to its day folder's 1-byte file
//! (creating a million files one by one takes far longer than the sweep).
//! The sweep runs in a child process of its own (time and VmHWM, and an
//! idle child's VmHWM beside it); afterwards the parent checks that the
//! index and the disk hold exactly the same segments.
//!
//! `CSAL_BENCH_RETENTION_SEGMENTS` (a multiple of 4) shrinks the run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use csal_catalog::{CameraPolicy, Catalog, MasterKey, NewModule, NewSegment, SegmentQuery, StoredSegment, TimeSource};

use crate::Figure;
use crate::rss::peak_rss_kib;

const CAMERAS: usize = 4;
const SEG_MS: i64 = 10_000;
const DAY_MS: i64 = 86_400_000;
/// 2027-01-15T08:00:00Z: any fixed instant; the clock is the sweep's argument.
const T0: i64 = 1_800_000_000_000;
const RETENTION_DAYS: u32 = 3;
const TARGET: &str = "disk";
/// Rows per catalog transaction while indexing.
const BATCH: usize = 20_000;

#[derive(clap::Args)]
pub struct ChildArgs {
    /// The bench folder (catalog.db, key, disk/).
    #[arg(long)]
    dir: PathBuf,
    /// The fake clock: sweep as of this instant (ms since the epoch).
    #[arg(long)]
    now_ms: i64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Outcome {
    segments_deleted: u64,
    copies_deleted: u64,
    failed: u64,
    secs: f64,
    rss_kib: u64,
}

fn key_path(dir: &Path) -> PathBuf {
    dir.join("master.key")
}

async fn open(dir: &Path) -> Result<Catalog> {
    let url = format!("sqlite://{}", dir.join("catalog.db").display());
    let key = std::fs::read_to_string(key_path(dir))?;
    Ok(Catalog::open(&url, MasterKey::Explicit(key.trim().to_owned().into())).await?)
}

/// Child side: one sweep, as of `--now-ms`; prints the outcome as JSON.
pub async fn child(args: &ChildArgs) -> Result<()> {
    let catalog = open(&args.dir).await?;
    let started = Instant::now();
    let report = csal_spool::retention::sweep(&catalog, args.now_ms, false).await?;
    let outcome = Outcome {
        segments_deleted: report.segments_deleted,
        copies_deleted: report.copies_deleted,
        failed: report.failed,
        secs: started.elapsed().as_secs_f64(),
        rss_kib: peak_rss_kib()?,
    };
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

fn object_of(camera: &str, k: usize) -> String {
    let start = T0 + k as i64 * SEG_MS;
    format!("{camera}/d{}/s{k:07}.ts", (start - T0) / DAY_MS)
}

/// Index `per_camera` segments of each camera, stored on [`TARGET`], and
/// plant their 1-byte objects (hard links, one source file per day folder).
async fn plant(dir: &Path, per_camera: usize) -> Result<()> {
    let started = Instant::now();
    let key = MasterKey::generate()?;
    std::fs::write(key_path(dir), csal_core::ExposeSecret::expose_secret(&key))?;
    let catalog = open(dir).await?;
    let root = dir.join(TARGET);
    std::fs::create_dir_all(&root)?;
    catalog
        .create_module(NewModule {
            name: TARGET.into(),
            label: None,
            provider_type: "local_fs".into(),
            is_enabled: true,
            config: serde_json::json!({ "root": root, "min_free_mb": 0 }),
        })
        .await?;
    for c in 0..CAMERAS {
        let camera = format!("cam{c}");
        let policy = CameraPolicy::new(vec![TARGET.into()]).with_retention_days(RETENTION_DAYS);
        catalog.set_policy(&camera, policy).await?;
        for start in (0..per_camera).step_by(BATCH) {
            let batch: Vec<StoredSegment> = (start..(start + BATCH).min(per_camera))
                .map(|k| StoredSegment {
                    segment: NewSegment {
                        id: format!("{camera}-{k:07}"),
                        camera_id: camera.clone(),
                        name: format!("s{k:07}.ts"),
                        start_ms: T0 + k as i64 * SEG_MS,
                        duration_ms: Some(SEG_MS),
                        time_source: TimeSource::Header,
                        size: 1,
                        crc32c: 0,
                        content_type: Some("video/mp2t".into()),
                        node_id: "bench".into(),
                        copies_required: 1,
                    },
                    copies: vec![(TARGET.into(), object_of(&camera, k))],
                })
                .collect();
            catalog.index_stored_segments(&batch).await?;
        }
    }
    catalog.close().await;
    eprintln!("retention bench: indexed {} segments in {:.1} s", per_camera * CAMERAS, started.elapsed().as_secs_f64());
    let writers: Vec<_> = (0..CAMERAS)
        .map(|c| {
            let root = root.clone();
            std::thread::spawn(move || -> Result<()> {
                let camera = format!("cam{c}");
                let source = root.join(format!(".source-{camera}"));
                let per_day = (DAY_MS / SEG_MS) as usize;
                for k in 0..per_camera {
                    let object = root.join(object_of(&camera, k));
                    if k % per_day == 0 {
                        std::fs::create_dir_all(object.parent().context("day folder")?)?;
                        let _ = std::fs::remove_file(&source);
                        std::fs::write(&source, b"x")?;
                    }
                    std::fs::hard_link(&source, object)?;
                }
                std::fs::remove_file(source)?;
                Ok(())
            })
        })
        .collect();
    for w in writers {
        w.join().map_err(|_| anyhow::anyhow!("planting thread panicked"))??;
    }
    Ok(())
}

/// Every object under the target's root, as `camera/day/name` paths.
fn on_disk(root: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(root)?.to_string_lossy().into_owned();
            if !rel.starts_with(".csal") {
                out.insert(rel);
            }
        }
    }
    Ok(out)
}

/// Every stored object id the index holds for the target.
async fn in_index(catalog: &Catalog) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for c in 0..CAMERAS {
        let camera = format!("cam{c}");
        let mut after = None;
        loop {
            let query = SegmentQuery { after, limit: 10_000, ..Default::default() };
            let page = catalog.list_segments(&camera, &query).await?;
            let ids: Vec<&str> = page.iter().map(|s| s.id.as_str()).collect();
            for copies in catalog.copies_of(&ids).await?.into_values() {
                out.extend(copies.into_iter().filter_map(|c| c.object_id));
            }
            if page.len() < 10_000 {
                break;
            }
            after = page.last().map(|s| (s.start_ms, s.name.clone()));
        }
    }
    Ok(out)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Parent side: plant, sweep in a child, check, one row.
pub async fn figures() -> Result<Vec<Figure>> {
    let total: usize =
        std::env::var("CSAL_BENCH_RETENTION_SEGMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    anyhow::ensure!(
        total.is_multiple_of(CAMERAS) && total > 0,
        "{total} segments is not a positive multiple of {CAMERAS}"
    );
    let per_camera = total / CAMERAS;
    let dir = std::env::current_dir()?.join("target/bench-retention");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let started = Instant::now();
    plant(&dir, per_camera).await?;
    let planted_secs = started.elapsed().as_secs_f64();
    eprintln!("retention bench: indexed and planted {total} segments in {planted_secs:.1} s");

    // The fake clock: the retention period after nine in ten segments ended.
    let now_ms = T0 + (per_camera * 9 / 10) as i64 * SEG_MS + i64::from(RETENTION_DAYS) * DAY_MS;
    let cutoff = now_ms - i64::from(RETENTION_DAYS) * DAY_MS;
    // A segment expires when it ended before the cutoff.
    let expiring_per_camera = (0..per_camera).filter(|k| T0 + (*k as i64 + 1) * SEG_MS < cutoff).count();
    let expected = (expiring_per_camera * CAMERAS) as u64;

    let now_arg = now_ms.to_string();
    let dir_arg = dir.display().to_string();
    let line = crate::child::run_child(&["retention-child", "--dir", &dir_arg, "--now-ms", &now_arg], &[]).await?;
    let sweep: Outcome = serde_json::from_str(&line)?;
    let idle_kib: u64 = crate::child::run_child(&["rss-idle"], &[]).await?.parse()?;

    let catalog = open(&dir).await?;
    let indexed = in_index(&catalog).await?;
    catalog.close().await;
    let disk = on_disk(&dir.join(TARGET))?;
    let survivors = (per_camera - expiring_per_camera) * CAMERAS;
    let agree = indexed == disk
        && indexed.len() == survivors
        && sweep.segments_deleted == expected
        && sweep.copies_deleted == expected
        && sweep.failed == 0;
    if !agree {
        eprintln!(
            "retention bench: index {} objects, disk {}, expected {survivors} left; deleted {} of {expected}, {} failed",
            indexed.len(),
            disk.len(),
            sweep.segments_deleted,
            sweep.failed
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(vec![Figure {
        name: format!(
            "retention sweep of {total} indexed segments on local_fs ({CAMERAS} cameras, {} expired; SQLite catalog)",
            sweep.segments_deleted
        ),
        value: format!(
            "{:.1} s ({:.0} segments/s); peak RSS {:.1} MiB (idle process {:.1} MiB); index = disk: {}",
            sweep.secs,
            sweep.segments_deleted as f64 / sweep.secs,
            mib(sweep.rss_kib),
            mib(idle_kib),
            if agree { "yes" } else { "NO" }
        ),
        target: "index = disk".into(),
        met: agree,
    }])
}
