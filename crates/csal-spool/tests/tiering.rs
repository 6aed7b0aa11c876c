//! Tiering with a fake clock on two real local_fs targets: "after 3 days,
//! move from nas to cloud". A dry run changes nothing; a failing destination
//! leaves every segment on nas and indexed; once it is back the segments
//! move (copied, verified against the index, re-indexed, then deleted from
//! nas), a held segment moves and stays held, and a copy whose bytes on nas
//! went bad is never moved.

use std::path::PathBuf;
use std::time::Duration;

use csal_catalog::{CameraPolicy, Catalog, CopyState, MasterKey, NewHold, NewModule};
use csal_core::Checksum;
use csal_spool::retention::sweep;

csal_core::link_providers!(csal_local_fs);

const DAY: i64 = 86_400_000;
const SEG: i64 = 10_000;
const T0: i64 = 1_800_000_000_000;
const SEGMENTS: i64 = 7;

fn bytes_of(k: i64) -> Vec<u8> {
    (0..5000u32).map(|i| (i as i64 * 7 + k) as u8).collect()
}

fn object_of(k: i64) -> String {
    format!("cam/d{k}/s{k}.ts")
}

struct Site {
    dir: tempfile::TempDir,
    catalog: Catalog,
}

impl Site {
    fn root(&self, target: &str) -> PathBuf {
        self.dir.path().join("targets").join(target)
    }

    async fn copies(&self, k: i64) -> Vec<(String, CopyState, Option<String>)> {
        let copies = self.catalog.segment_copies(&format!("seg-{k}")).await.unwrap();
        copies.into_iter().map(|c| (c.target, c.state, c.object_id)).collect()
    }
}

/// A site with targets `nas` and `cloud` and one segment a day on nas
/// (real bytes, their real CRC32C in the index).
async fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    let catalog = Catalog::open(&url, MasterKey::Explicit(MasterKey::generate().unwrap())).await.unwrap();
    let site = Site { dir, catalog };
    for t in ["nas", "cloud"] {
        std::fs::create_dir_all(site.root(t)).unwrap();
        let config = serde_json::json!({"root": site.root(t), "min_free_mb": 1});
        let module =
            NewModule { name: t.into(), label: None, provider_type: "local_fs".into(), is_enabled: true, config };
        site.catalog.create_module(module).await.unwrap();
    }
    let pool =
        csal_sql::DbLocation::parse(&url, None, true).unwrap().connect(1, Duration::from_secs(10)).await.unwrap();
    for k in 0..SEGMENTS {
        let (start, data, object) = (T0 + k * DAY, bytes_of(k), object_of(k));
        let path = site.root("nas").join(&object);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &data).unwrap();
        let crc = Checksum::crc32c(crc32c::crc32c(&data)).value;
        sqlx::query(&format!(
            "INSERT INTO segments (id, camera_id, name, start_ms, end_ms, duration_ms, time_source, size, crc32c, \
             content_type, node_id, spooled, copies_required, copies_stored, next_attempt_ms, received_ms) VALUES \
             ('seg-{k}', 'cam', 's{k}.ts', {start}, {}, {SEG}, 'header', {}, '{crc}', 'video/mp2t', 'node', 0, 1, 1, 0, {start})",
            start + SEG,
            data.len()
        ))
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(&format!(
            "INSERT INTO segment_copies (segment_id, target, state, key_hint, object_id, attempts, last_error, \
             updated_ms) VALUES ('seg-{k}', 'nas', 'stored', 'cam/s{k}.ts', '{object}', 1, NULL, 0)"
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    site
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_move_after_their_days_only_when_the_copy_is_verified() {
    let site = site().await;
    let policy = CameraPolicy::new(vec!["nas".into()]).with_tier("nas", "cloud", 3);
    site.catalog.set_policy("cam", policy).await.unwrap();
    let hold = NewHold {
        camera_id: "cam".into(),
        from_ms: Some(T0 + DAY),
        to_ms: Some(T0 + DAY + SEG),
        reason: "case 7".into(),
        created_by: "test".into(),
    };
    site.catalog.add_hold(hold).await.unwrap();
    // Segments 0..=3 ended more than 3 days before `now`.
    let now = T0 + 6 * DAY + 2 * SEG;
    let due = 0..4;

    let dry = sweep(&site.catalog, now, true).await.unwrap();
    assert_eq!((dry.moved, dry.planned_moves.len()), (4, 4), "{dry:?}");
    assert!(dry.planned_moves[0].contains("nas -> cloud"), "{:?}", dry.planned_moves);
    assert_eq!(site.copies(0).await, [("nas".into(), CopyState::Stored, Some(object_of(0)))]);

    // The destination fails (its root is a file now): nothing leaves nas.
    let cloud = site.root("cloud");
    std::fs::rename(&cloud, cloud.with_extension("off")).unwrap();
    std::fs::write(&cloud, b"not a folder").unwrap();
    let failed = sweep(&site.catalog, now, false).await.unwrap();
    assert_eq!((failed.moved, failed.move_failed, failed.copies_deleted), (0, 4, 0), "{failed:?}");
    for k in due.clone() {
        assert!(site.root("nas").join(object_of(k)).exists(), "segment {k} left nas");
        let copies = site.copies(k).await;
        assert!(copies.contains(&("nas".into(), CopyState::Stored, Some(object_of(k)))), "{copies:?}");
        assert!(copies.iter().any(|(t, s, _)| t == "cloud" && *s == CopyState::Failed), "{copies:?}");
    }

    // Back again; segment 0's bytes on nas rotted meanwhile (same length).
    std::fs::remove_file(&cloud).unwrap();
    std::fs::rename(cloud.with_extension("off"), &cloud).unwrap();
    let rotten = site.root("nas").join(object_of(0));
    let mut bad = bytes_of(0);
    bad[2500] ^= 0x40;
    std::fs::write(&rotten, &bad).unwrap();
    let done = sweep(&site.catalog, now, false).await.unwrap();
    assert_eq!((done.moved, done.move_failed, done.copies_deleted), (3, 1, 3), "{done:?}");
    assert!(done.errors.iter().any(|e| e.contains("s0.ts") && e.contains("CRC32C")), "{:?}", done.errors);
    let copies = site.copies(0).await;
    assert!(copies.contains(&("nas".into(), CopyState::Stored, Some(object_of(0)))), "{copies:?}");

    let router = site.catalog.router();
    for k in 1..4 {
        assert!(!site.root("nas").join(object_of(k)).exists(), "segment {k} still on nas");
        let copies = site.copies(k).await;
        assert_eq!(copies.len(), 1, "{copies:?}");
        let (target, state, object) = copies[0].clone();
        assert_eq!((target.as_str(), state), ("cloud", CopyState::Stored));
        let data = bytes_of(k);
        let want = Checksum::crc32c(crc32c::crc32c(&data));
        let back = router.read_verified("cloud", &object.unwrap(), &want).await.unwrap();
        assert_eq!(back.collect_limited(1 << 20).await.unwrap().as_ref(), data.as_slice());
    }
    // Not yet due: untouched. The held segment (1) moved and is still held.
    for k in 4..SEGMENTS {
        assert_eq!(site.copies(k).await, [("nas".into(), CopyState::Stored, Some(object_of(k)))]);
    }
    assert_eq!(site.catalog.list_holds(Some("cam")).await.unwrap().len(), 1);
    let cloud_files = std::fs::read_dir(cloud.join("cam")).unwrap().count();
    assert_eq!(cloud_files, 3, "only verified copies are on cloud");
    // Nothing left to do but the rotten one.
    let again = sweep(&site.catalog, now, false).await.unwrap();
    assert_eq!((again.moved, again.move_failed), (0, 1), "{again:?}");
}
