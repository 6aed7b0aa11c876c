//! Retention with a fake clock over ten days of 10 s segments on two
//! local_fs targets: exactly the right copies go, on storage and in the
//! index; a legal hold in the middle survives; a target that cannot delete
//! keeps its rows `delete_pending` until it is back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use csal_catalog::{CameraPolicy, Catalog, CopyState, MasterKey, NewHold, NewModule, SegmentQuery};
use csal_spool::retention::sweep;

csal_core::link_providers!(csal_local_fs);

const DAY: i64 = 86_400_000;
const SEG: i64 = 10_000;
const T0: i64 = 1_800_000_000_000;

struct Site {
    dir: tempfile::TempDir,
    catalog: Catalog,
}

impl Site {
    fn root(&self, target: &str) -> PathBuf {
        self.dir.path().join("targets").join(target)
    }
    fn files(&self, target: &str) -> usize {
        fn walk(p: &Path) -> usize {
            std::fs::read_dir(p)
                .map_or(0, |d| d.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum())
        }
        walk(&self.root(target))
    }
}

/// `days` of 10 s segments of `camera`, each stored on every target (a
/// 1-byte file written straight into the target folder, rows inserted in
/// bulk): a month of recording without a month of waiting.
async fn recorded(site: &Site, camera: &str, targets: &[&str], days: i64) -> usize {
    let n = (days * DAY / SEG) as usize;
    let url = format!("sqlite://{}", site.dir.path().join("catalog.db").display());
    let pool =
        csal_sql::DbLocation::parse(&url, None, true).unwrap().connect(1, Duration::from_secs(10)).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(400) {
        let mut segs = String::from(
            "INSERT INTO segments (id, camera_id, name, start_ms, end_ms, duration_ms, time_source, size, crc32c, \
             content_type, node_id, spooled, copies_required, copies_stored, next_attempt_ms, received_ms) VALUES ",
        );
        let mut copies = String::from(
            "INSERT INTO segment_copies (segment_id, target, state, key_hint, object_id, attempts, last_error, \
             updated_ms) VALUES ",
        );
        for (i, k) in chunk.iter().enumerate() {
            let start = T0 + *k as i64 * SEG;
            let id = format!("{camera}-{k:07}");
            let sep = if i == 0 { "" } else { "," };
            segs.push_str(&format!(
                "{sep}('{id}', '{camera}', 's{k:07}.ts', {start}, {}, {SEG}, 'header', 1, '00000000', 'video/mp2t', \
                 'node', 0, {}, {}, 0, {start})",
                start + SEG,
                targets.len(),
                targets.len()
            ));
            for (j, t) in targets.iter().enumerate() {
                let object = format!("{camera}/d{}/s{k:07}.ts", start / DAY);
                let sep = if i == 0 && j == 0 { "" } else { "," };
                copies.push_str(&format!("{sep}('{id}', '{t}', 'stored', '{object}', '{object}', 1, NULL, 0)"));
            }
        }
        sqlx::query(&segs).execute(&mut *tx).await.unwrap();
        sqlx::query(&copies).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    pool.close().await;
    // One thread per target; every object a hard link to its day's 1-byte
    // file (cheaper than creating each; a file takes at most 65,000 links).
    let writers: Vec<_> = targets
        .iter()
        .map(|t| {
            let (root, camera) = (site.root(t), camera.to_owned());
            tokio::task::spawn_blocking(move || {
                let source = root.join(".source");
                for k in 0..n {
                    let start = T0 + k as i64 * SEG;
                    let dir = root.join(&camera).join(format!("d{}", start / DAY));
                    if k == 0 || start % DAY < SEG {
                        std::fs::create_dir_all(&dir).unwrap();
                        let _ = std::fs::remove_file(&source);
                        std::fs::write(&source, b"x").unwrap();
                    }
                    std::fs::hard_link(&source, dir.join(format!("s{k:07}.ts"))).unwrap();
                }
                std::fs::remove_file(source).unwrap();
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    n
}

async fn site(targets: &[&str]) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    let catalog = Catalog::open(&url, MasterKey::Explicit(MasterKey::generate().unwrap())).await.unwrap();
    let site = Site { dir, catalog };
    for t in targets {
        std::fs::create_dir_all(site.root(t)).unwrap();
        let module = NewModule {
            name: (*t).into(),
            label: None,
            provider_type: "local_fs".into(),
            is_enabled: true,
            config: serde_json::json!({"root": site.root(t), "min_free_mb": 1}),
        };
        site.catalog.create_module(module).await.unwrap();
    }
    site
}

async fn indexed(catalog: &Catalog, camera: &str) -> usize {
    let mut n = 0;
    let mut after = None;
    loop {
        let page =
            catalog.list_segments(camera, &SegmentQuery { after, limit: 10_000, ..Default::default() }).await.unwrap();
        n += page.len();
        if page.len() < 10_000 {
            return n;
        }
        after = page.last().map(|s| (s.start_ms, s.name.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_days_keep_exactly_their_retention_a_hold_survives_and_failed_deletes_wait() {
    let site = site(&["nas", "cloud"]).await;
    let policy = CameraPolicy::new(vec!["nas".into(), "cloud".into()])
        .with_copies(2)
        .with_retention_days(7)
        .with_keep_days("nas", 3);
    site.catalog.set_policy("cam1", policy).await.unwrap();
    let t = std::time::Instant::now();
    let total = recorded(&site, "cam1", &["nas", "cloud"], 10).await;
    eprintln!("recorded in {:?}", t.elapsed());
    assert_eq!(total, 86_400);
    let hold_from = T0 + DAY + 12 * 3_600_000;
    let hold = site
        .catalog
        .add_hold(NewHold {
            camera_id: "cam1".into(),
            from_ms: Some(hold_from),
            to_ms: Some(hold_from + 3_600_000),
            reason: "incident 4711".into(),
            created_by: "investigator".into(),
        })
        .await
        .unwrap();
    let now = T0 + 10 * DAY + 1;
    let per_day = (DAY / SEG) as usize;
    let (old, held) = (3 * per_day - 360, 360);

    // A dry run changes nothing and says what would go.
    let t = std::time::Instant::now();
    let dry = sweep(&site.catalog, now, true).await.unwrap();
    eprintln!("dry run in {:?}", t.elapsed());
    assert_eq!(dry.segments_deleted as usize, old);
    assert_eq!(dry.copies_deleted as usize, old * 2 + 4 * per_day, "old segments' two copies, 4 days of nas copies");
    assert_eq!((site.files("nas"), site.files("cloud"), indexed(&site.catalog, "cam1").await), (total, total, total));

    // The NAS cannot delete (its module is disabled): its copies wait.
    site.catalog.set_enabled("nas", false).await.unwrap();
    let t = std::time::Instant::now();
    let first = sweep(&site.catalog, now, false).await.unwrap();
    eprintln!("first sweep in {:?}", t.elapsed());
    assert!(first.failed > 0 && first.segments_deleted == 0, "{first:?}");
    assert_eq!(site.files("nas"), total, "nothing deleted on the NAS");
    assert_eq!(site.files("cloud"), total - old, "the cloud copies of old segments went");
    assert_eq!(indexed(&site.catalog, "cam1").await, total, "segments with a pending delete stay indexed");
    let oldest = site.catalog.segment("cam1", "s0000000.ts").await.unwrap().unwrap();
    let copies = site.catalog.segment_copies(&oldest.id).await.unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!((copies[0].target.as_str(), copies[0].state), ("nas", CopyState::DeletePending));
    assert!(copies[0].last_error.as_deref().is_some_and(|e| e.contains("disabled")), "{copies:?}");

    // Back: the next sweep finishes the job.
    site.catalog.set_enabled("nas", true).await.unwrap();
    let t = std::time::Instant::now();
    let second = sweep(&site.catalog, now, false).await.unwrap();
    eprintln!("second sweep in {:?}", t.elapsed());
    assert_eq!(second.failed, 0, "{:?}", second.errors);
    assert_eq!(indexed(&site.catalog, "cam1").await, total - old);
    assert_eq!(site.files("cloud"), total - old, "7 days + the held hour");
    assert_eq!(site.files("nas"), 3 * per_day + held, "3 days + the held hour");
    assert_eq!(second.held as usize, held * 2, "the hold was honoured by both rules");
    for k in [8640 + 4320, 8640 + 4320 + 359] {
        let seg = site.catalog.segment("cam1", &format!("s{k:07}.ts")).await.unwrap().expect("held segment kept");
        assert_eq!(seg.copies_stored, 2, "a held segment keeps both copies");
    }
    assert!(site.catalog.segment("cam1", &format!("s{:07}.ts", 8640 + 4320 - 1)).await.unwrap().is_none());
    assert!(site.catalog.segment("cam1", &format!("s{:07}.ts", 3 * per_day)).await.unwrap().is_some());

    // Nothing more to do; lifting the hold lets it go.
    let third = sweep(&site.catalog, now, false).await.unwrap();
    assert_eq!((third.copies_deleted, third.failed), (0, 0));
    site.catalog.remove_hold(&hold.id).await.unwrap();
    sweep(&site.catalog, now, false).await.unwrap();
    assert_eq!(indexed(&site.catalog, "cam1").await, total - 3 * per_day);
    assert_eq!(site.files("nas"), 3 * per_day);
    site.catalog.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_cap_deletes_the_oldest_and_a_lone_copy_waits_for_the_camera_rule() {
    let site = site(&["nas", "cloud"]).await;
    // cam2: one copy each, capped at 550 segment-bytes (segments are 1 byte
    // here, so 550 segments remain).
    site.catalog
        .set_policy("cam2", CameraPolicy { max_bytes: Some(550), ..CameraPolicy::new(vec!["cloud".into()]) })
        .await
        .unwrap();
    recorded(&site, "cam2", &["cloud"], 1).await;
    let report = sweep(&site.catalog, T0 + 2 * DAY, false).await.unwrap();
    assert_eq!(report.segments_deleted, 8640 - 550);
    assert_eq!(indexed(&site.catalog, "cam2").await, 550);
    let oldest_left =
        site.catalog.list_segments("cam2", &SegmentQuery { limit: 1, ..Default::default() }).await.unwrap();
    assert_eq!(oldest_left[0].name, format!("s{:07}.ts", 8640 - 550), "the newest ones are kept");
    // cam3: its only copy is on the short-lived target (a fail-over):
    // keep_days does not delete a segment's last copy.
    site.catalog
        .set_policy("cam3", CameraPolicy::new(vec!["nas".into(), "cloud".into()]).with_keep_days("nas", 1))
        .await
        .unwrap();
    recorded(&site, "cam3", &["nas"], 1).await;
    let report = sweep(&site.catalog, T0 + 5 * DAY, false).await.unwrap();
    assert_eq!(report.copies_deleted, 0);
    assert_eq!(indexed(&site.catalog, "cam3").await, 8640);
    // `csal rm` (through the catalog's check) refuses a held segment's object.
    site.catalog
        .add_hold(NewHold {
            camera_id: "cam3".into(),
            from_ms: None,
            to_ms: None,
            reason: "court order".into(),
            created_by: "legal".into(),
        })
        .await
        .unwrap();
    let object = format!("cam3/d{}/s0000005.ts", T0 / DAY);
    let e = site.catalog.check_not_held("nas", &object).await.unwrap_err();
    assert!(e.message().contains("court order") && e.message().contains("legal hold"), "{e}");
    site.catalog.check_not_held("nas", "cam3/unknown.ts").await.unwrap();
    site.catalog.close().await;
}
