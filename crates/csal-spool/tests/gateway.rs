//! The gateway end to end on local_fs targets and an SQLite catalog: what
//! is acknowledged is delivered (to `copies` distinct targets), survives a
//! restart, is never stored twice, and reads back the same bytes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use csal_catalog::{CameraPolicy, Catalog, MasterKey, NewModule, SegmentRecord};
use csal_core::{ByteRange, ByteStream, ErrorKind, StorageError};
use csal_spool::{Gateway, GatewayConfig, IngestError, IngestOutcome, IngestRequest, SpoolConfig};
use futures::StreamExt;

csal_core::link_providers!(csal_local_fs, csal_memory);

const WAIT: Duration = Duration::from_secs(30);

struct Site {
    dir: tempfile::TempDir,
    key: csal_core::SecretString,
    catalog: Catalog,
}

impl Site {
    async fn new(targets: &[&str], copies: u32) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate().unwrap();
        let catalog = open_catalog(dir.path(), &key).await;
        for t in targets {
            let root = dir.path().join("targets").join(t);
            std::fs::create_dir_all(&root).unwrap();
            catalog
                .create_module(NewModule {
                    name: (*t).into(),
                    label: None,
                    provider_type: "local_fs".into(),
                    is_enabled: true,
                    config: serde_json::json!({"root": root}),
                })
                .await
                .unwrap();
        }
        let names: Vec<String> = targets.iter().map(|t| (*t).to_owned()).collect();
        catalog.set_policy("cam1", CameraPolicy::new(names).with_copies(copies)).await.unwrap();
        Site { dir, key, catalog }
    }

    fn config(&self, max_bytes: u64) -> GatewayConfig {
        let mut config = GatewayConfig::new(SpoolConfig { dir: self.spool_dir(), max_bytes });
        config.poll_interval = Duration::from_millis(100);
        config.max_backoff = Duration::from_millis(400);
        config
    }

    fn spool_dir(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    async fn gateway(&self) -> Gateway {
        Gateway::start(self.catalog.clone(), self.config(1 << 30)).await.unwrap()
    }

    /// Every file a target holds under `cam1/`, with its bytes.
    fn stored(&self, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let root = self.dir.path().join("targets").join(target);
        let mut out: Vec<_> = walk(&root.join("cam1"))
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        out.sort();
        out
    }

    fn spool_files(&self) -> usize {
        std::fs::read_dir(self.spool_dir().join("segments")).map(|d| d.count()).unwrap_or(0)
    }
}

async fn open_catalog(dir: &Path, key: &csal_core::SecretString) -> Catalog {
    let url = format!("sqlite://{}/catalog.db", dir.display());
    Catalog::open(&url, MasterKey::Explicit(key.clone())).await.unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
            out.push(p);
        }
    }
    out
}

fn segment_bytes(n: u8, len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(n)).collect::<Vec<u8>>())
}

/// A body that arrives in several chunks and cannot be replayed (like an HTTP upload).
fn one_shot(data: &Bytes) -> ByteStream {
    let chunks: Vec<csal_core::Result<Bytes>> = data.chunks(7000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    ByteStream::new(futures::stream::iter(chunks), None)
}

async fn put(gw: &Gateway, name: &str, data: &Bytes) -> Result<IngestOutcome, IngestError> {
    gw.ingest(IngestRequest::new("cam1", name), one_shot(data)).await
}

async fn delivered(gw: &Gateway, record: &SegmentRecord, copies: u32) -> SegmentRecord {
    gw.wait_for_copies(&record.id, copies, WAIT).await.unwrap().expect("delivered in time")
}

async fn read_all(mut stream: ByteStream) -> csal_core::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_land_on_both_targets_once_and_leave_the_spool() {
    let site = Site::new(&["disk-a", "disk-b"], 2).await;
    let gw = site.gateway().await;
    let mut sent = Vec::new();
    for n in 0..5u8 {
        let data = segment_bytes(n, 50_000 + n as usize);
        let outcome = put(&gw, &format!("seg{n:03}.ts"), &data).await.unwrap();
        let IngestOutcome::Created(record) = outcome else { panic!("first upload creates") };
        assert_eq!(record.size, data.len() as u64);
        assert_eq!(record.crc32c, format!("{:08x}", crc32c::crc32c(&data)));
        sent.push((record, data));
    }
    for (record, _) in &sent {
        let done = delivered(&gw, record, 2).await;
        assert_eq!(done.copies_stored, 2);
    }
    for target in ["disk-a", "disk-b"] {
        let stored = site.stored(target);
        assert_eq!(stored.len(), 5, "{target} holds each segment exactly once: {stored:?}");
        let mut want: Vec<Vec<u8>> = sent.iter().map(|(_, d)| d.to_vec()).collect();
        let mut got: Vec<Vec<u8>> = stored.into_iter().map(|(_, b)| b).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{target} holds the same bytes");
    }
    // Released from the spool once both copies are recorded.
    gw.drain(WAIT).await.expect("the spool empties");
    assert_eq!(site.spool_files(), 0, "nothing left in the spool after delivery");
    assert_eq!(gw.stats().spool_bytes, 0);
    let body = gw.open_segment("cam1", &sent[2].0.name, None).await.unwrap();
    assert_ne!(body.source, "spool");
    assert_eq!(read_all(body.stream).await.unwrap(), sent[2].1.to_vec());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_bytes_is_idempotent_and_other_bytes_conflict() {
    let site = Site::new(&["disk-a"], 1).await;
    let gw = site.gateway().await;
    let data = segment_bytes(1, 30_000);
    let IngestOutcome::Created(first) = put(&gw, "a.ts", &data).await.unwrap() else { panic!() };
    let IngestOutcome::Identical(again) = put(&gw, "a.ts", &data).await.unwrap() else { panic!("identical retry") };
    assert_eq!(again.id, first.id);
    let other = segment_bytes(2, 30_000);
    match put(&gw, "a.ts", &other).await {
        Err(IngestError::Conflict(existing)) => assert_eq!(existing.id, first.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    delivered(&gw, &first, 1).await;
    assert_eq!(site.stored("disk-a").len(), 1, "neither retry stored anything");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_leave_nothing_behind() {
    let site = Site::new(&["disk-a"], 1).await;
    let gw = site.gateway().await;
    let data = segment_bytes(3, 20_000);
    // Wrong checksum.
    let mut req = IngestRequest::new("cam1", "crc.ts");
    req.expected_crc32c = Some(crc32c::crc32c(&data) ^ 1);
    assert!(matches!(gw.ingest(req, one_shot(&data)).await, Err(IngestError::Invalid(_))));
    // Shorter than its Content-Length.
    let mut req = IngestRequest::new("cam1", "short.ts");
    req.content_length = Some(data.len() as u64 + 10);
    assert!(matches!(gw.ingest(req, one_shot(&data)).await, Err(IngestError::Invalid(_))));
    // A body that breaks off.
    let broken = ByteStream::new(
        futures::stream::iter(vec![Ok(Bytes::from_static(b"abc")), Err(StorageError::transient("connection reset"))]),
        None,
    );
    assert!(matches!(
        gw.ingest(IngestRequest::new("cam1", "broken.ts"), broken).await,
        Err(IngestError::BodyBroken(_))
    ));
    // Hostile names and cameras, and a camera without a policy.
    for (camera, name) in [("cam1", "../x.ts"), ("cam1", "a\0b"), ("../cam", "x.ts"), ("cam1", &"n".repeat(10_000))] {
        let r = gw.ingest(IngestRequest::new(camera, name), one_shot(&data)).await;
        assert!(matches!(r, Err(IngestError::Invalid(_))), "{camera:?}/{name:.20}: {r:?}");
    }
    let r = gw.ingest(IngestRequest::new("nopolicy", "x.ts"), one_shot(&data)).await;
    assert!(matches!(r, Err(IngestError::NoPolicy(_))), "{r:?}");
    for name in ["crc.ts", "short.ts", "broken.ts"] {
        assert_eq!(gw.segment("cam1", name).await.unwrap_err().kind(), ErrorKind::NotFound, "{name} not indexed");
    }
    assert_eq!(site.spool_files(), 0);
    assert_eq!(std::fs::read_dir(site.spool_dir().join("tmp")).unwrap().count(), 0, "no temporary file left");
    let stats = gw.stats();
    assert_eq!(stats.spool_bytes, 0, "every reservation was given back");
    assert_eq!(stats.ingest_refused.values().sum::<u64>(), 8);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_refuses_new_segments_and_keeps_the_acknowledged_ones() {
    let site = Site::new(&["disk-a"], 1).await;
    // The only target is disabled: nothing leaves the spool.
    site.catalog.set_enabled("disk-a", false).await.unwrap();
    let gw = Gateway::start(site.catalog.clone(), site.config(100_000)).await.unwrap();
    let mut kept = Vec::new();
    let mut refused = 0;
    for n in 0..6u8 {
        let data = segment_bytes(n, 30_000);
        match put(&gw, &format!("s{n}.ts"), &data).await {
            Ok(IngestOutcome::Created(r)) => kept.push((r, data)),
            Err(IngestError::SpoolFull { retry_after, .. }) => {
                assert!(retry_after > Duration::ZERO);
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(kept.len(), 3, "three 30 kB segments fit in 100 kB");
    assert_eq!(refused, 3);
    assert!(gw.stats().spool_bytes <= 100_000);
    // The target comes back: everything acknowledged is delivered.
    site.catalog.set_enabled("disk-a", true).await.unwrap();
    for (r, _) in &kept {
        delivered(&gw, r, 1).await;
    }
    let mut got: Vec<Vec<u8>> = site.stored("disk-a").into_iter().map(|(_, b)| b).collect();
    let mut want: Vec<Vec<u8>> = kept.iter().map(|(_, d)| d.to_vec()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_over_takes_the_next_target_and_copies_wait_for_a_down_one() {
    let site = Site::new(&["disk-a", "disk-b", "disk-c"], 2).await;
    site.catalog.set_enabled("disk-a", false).await.unwrap();
    let gw = site.gateway().await;
    let data = segment_bytes(9, 40_000);
    let IngestOutcome::Created(r) = put(&gw, "f.ts", &data).await.unwrap() else { panic!() };
    delivered(&gw, &r, 2).await;
    assert!(site.stored("disk-a").is_empty());
    assert_eq!(site.stored("disk-b").len(), 1);
    assert_eq!(site.stored("disk-c").len(), 1, "the third target stood in for the disabled first");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_cut_off_by_a_crash_is_adopted_not_written_twice() {
    let site = Site::new(&["disk-a"], 1).await;
    let data = segment_bytes(5, 25_000);
    // First life: ingest with the target disabled, so nothing is delivered.
    site.catalog.set_enabled("disk-a", false).await.unwrap();
    let gw = site.gateway().await;
    let IngestOutcome::Created(r) = put(&gw, "crash.ts", &data).await.unwrap() else { panic!() };
    gw.shutdown().await;
    // What a crash mid-delivery leaves: the journal says "writing" and the
    // target holds the finished object (the write completed, the node died
    // before recording it), plus a broken leftover of another attempt.
    site.catalog.set_enabled("disk-a", true).await.unwrap();
    let hint = format!(
        "cam1/{}/crash_{}.ts",
        &humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(r.start_ms as u64))
            .to_string()[..10],
        r.id
    );
    site.catalog.begin_copy(&r.id, "disk-a", &hint).await.unwrap();
    let router = site.catalog.router();
    let done =
        router.write("disk-a", ByteStream::from_bytes(data.clone()), csal_core::WriteMeta::new(&hint)).await.unwrap();
    let junk =
        router.write("disk-a", ByteStream::from_bytes(&b"half"[..]), csal_core::WriteMeta::new(&hint)).await.unwrap();
    assert_eq!(site.stored("disk-a").len(), 2);
    // Second life.
    let gw = site.gateway().await;
    let rec = delivered(&gw, &r, 1).await;
    let copies = site.catalog.segment_copies(&rec.id).await.unwrap();
    assert_eq!(copies[0].object_id.as_deref(), Some(done.object_id.as_str()), "the finished object was adopted");
    let stored = site.stored("disk-a");
    assert_eq!(stored.len(), 1, "no second copy, and the leftover is gone: {stored:?}");
    assert_eq!(stored[0].1, data.to_vec());
    assert!(router.stat("disk-a", &junk.object_id).await.is_err());
    assert_eq!(gw.stats().targets["disk-a"].adopted, 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_delivers_what_was_acknowledged_and_drops_what_was_not() {
    let site = Site::new(&["disk-a"], 1).await;
    site.catalog.set_enabled("disk-a", false).await.unwrap();
    let gw = site.gateway().await;
    let data = segment_bytes(7, 10_000);
    let IngestOutcome::Created(r) = put(&gw, "keep.ts", &data).await.unwrap() else { panic!() };
    gw.shutdown().await;
    // A file that never got its index row (the node died between fsync and commit).
    std::fs::write(site.spool_dir().join("segments").join("01JUNACKNOWLEDGED0000000000"), b"x").unwrap();
    site.catalog.set_enabled("disk-a", true).await.unwrap();
    let catalog = open_catalog(site.dir.path(), &site.key).await;
    let gw = Gateway::start(catalog, site.config(1 << 30)).await.unwrap();
    delivered(&gw, &r, 1).await;
    assert_eq!(site.stored("disk-a").len(), 1);
    assert!(!site.spool_dir().join("segments").join("01JUNACKNOWLEDGED0000000000").exists());
    // Two gateways never share one spool.
    let second = Gateway::start(site.catalog.clone(), site.config(1 << 30)).await.unwrap_err();
    assert!(second.message().contains("in use"), "{second}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_serves_ranges_from_the_spool_and_from_targets() {
    let site = Site::new(&["disk-a"], 1).await;
    site.catalog.set_enabled("disk-a", false).await.unwrap();
    let gw = site.gateway().await;
    let data = segment_bytes(4, 100_000);
    let IngestOutcome::Created(r) = put(&gw, "p.ts", &data).await.unwrap() else { panic!() };
    let body = gw.open_segment("cam1", "p.ts", Some(ByteRange::inclusive(10, 19))).await.unwrap();
    assert_eq!((body.source.as_str(), body.span.clone()), ("spool", 10..20));
    assert_eq!(read_all(body.stream).await.unwrap(), data[10..20].to_vec());
    let e = gw.open_segment("cam1", "p.ts", Some(ByteRange::from(100_000))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RangeNotSatisfiable);
    site.catalog.set_enabled("disk-a", true).await.unwrap();
    delivered(&gw, &r, 1).await;
    gw.drain(WAIT).await.unwrap();
    let body = gw.open_segment("cam1", "p.ts", Some(ByteRange::suffix(5))).await.unwrap();
    assert_eq!(body.source, "disk-a");
    assert_eq!(read_all(body.stream).await.unwrap(), data[99_995..].to_vec());
    // A copy corrupted behind CSAL's back is never served as good.
    let (path, _) = site.stored("disk-a").remove(0);
    let mut bad = data.to_vec();
    bad[500] ^= 0xff;
    std::fs::write(&path, &bad).unwrap();
    let body = gw.open_segment("cam1", "p.ts", None).await.unwrap();
    let e = read_all(body.stream).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_dates_segments_and_the_vod_playlist_lists_them() {
    let site = Site::new(&["disk-a"], 1).await;
    let gw = site.gateway().await;
    for n in 0..3u8 {
        put(&gw, &format!("seg{n}.ts"), &segment_bytes(n, 1000)).await.unwrap();
    }
    let live = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-12-04T13:00:00.000+0000\n\
        #EXTINF:2.000,\nseg0.ts\n#EXTINF:2.000,\nseg1.ts\n#EXTINF:1.500,\nseg2.ts\n#EXTINF:2.0,\nnot-yet.ts\n";
    let outcome = gw.apply_playlist("cam1", live).await.unwrap();
    assert_eq!((outcome.named, outcome.dated, outcome.pending), (4, 3, 1));
    let t0 = 1_796_389_200_000;
    let seg2 = gw.segment("cam1", "seg2.ts").await.unwrap();
    assert_eq!((seg2.start_ms, seg2.duration_ms, seg2.end_ms), (t0 + 4000, Some(1500), t0 + 5500));
    let text: Vec<String> =
        gw.vod_playlist("cam1", Some(t0 + 1000), None).await.unwrap().map(|c| c.unwrap()).collect().await;
    let text = text.concat();
    assert!(text.starts_with("#EXTM3U\n") && text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert_eq!(text.matches("segments/").count(), 3, "seg0 (ending at +2 s) overlaps a window from +1 s: {text}");
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-12-04T13:00:00.000Z"), "{text}");
    let e = gw.vod_playlist("cam1", Some(t0 + 3_600_000), None).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(gw.apply_playlist("cam1", "not a playlist").await.is_err());
    // The segment the playlist named before it arrived gets its times on arrival.
    let IngestOutcome::Created(late) = put(&gw, "not-yet.ts", &segment_bytes(9, 10)).await.unwrap() else { panic!() };
    assert_eq!((late.start_ms, late.duration_ms), (t0 + 5500, Some(2000)));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_finds_what_changed_behind_csals_back_and_delivers_it_again() {
    use csal_spool::fsck::{FsckOptions, fsck};
    let site = Site::new(&["disk-a", "disk-b"], 2).await;
    let gw = site.gateway().await;
    let mut sent = Vec::new();
    for n in 0..3u8 {
        let data = segment_bytes(n, 20_000 + n as usize);
        let IngestOutcome::Created(r) = put(&gw, &format!("f{n}.ts"), &data).await.unwrap() else { panic!() };
        sent.push((r, data));
    }
    gw.drain(WAIT).await.unwrap();
    gw.shutdown().await;
    // Behind CSAL's back: one copy deleted, one truncated, a stray file added.
    let mut objects = std::collections::HashMap::new();
    for (i, (r, _)) in sent.iter().enumerate() {
        for c in site.catalog.segment_copies(&r.id).await.unwrap() {
            objects.insert((i, c.target), c.object_id.unwrap());
        }
    }
    let object = |seg: usize, target: &str| objects[&(seg, target.to_owned())].clone();
    let root = |t: &str| site.dir.path().join("targets").join(t);
    std::fs::remove_file(root("disk-a").join(object(0, "disk-a"))).unwrap();
    std::fs::write(root("disk-b").join(object(1, "disk-b")), b"short").unwrap();
    std::fs::write(root("disk-a").join("cam1").join("stray.bin"), b"?").unwrap();

    let check = fsck(&site.catalog, &FsckOptions::default()).await.unwrap();
    assert_eq!((check.count("missing"), check.count("size_mismatch"), check.count("unknown")), (1, 1, 1), "{check:?}");
    assert_eq!(check.copies_checked, 6);
    assert!(check.findings.iter().all(|f| f.repaired.is_none()), "a check alone changes nothing");

    let fixed = fsck(&site.catalog, &FsckOptions { repair: true, ..Default::default() }).await.unwrap();
    for f in fixed.findings.iter().filter(|f| f.kind != "unknown") {
        assert!(f.repaired.as_deref().is_some_and(|r| r.starts_with("delivered again")), "{f:?}");
    }
    // The copies were delivered again (under new object ids), with the right bytes.
    for (seg, target) in [(0, "disk-a"), (1, "disk-b")] {
        let copies = site.catalog.segment_copies(&sent[seg].0.id).await.unwrap();
        let now = copies.into_iter().find(|c| c.target == target).unwrap().object_id.unwrap();
        assert_eq!(std::fs::read(root(target).join(now)).unwrap(), sent[seg].1.to_vec());
    }
    assert!(!root("disk-b").join(object(1, "disk-b")).exists(), "the damaged object was deleted");
    let again = fsck(&site.catalog, &FsckOptions::default()).await.unwrap();
    assert_eq!(again.findings.len(), 1, "only the stray file is left, for an admin to judge: {again:?}");
    assert!(root("disk-a").join("cam1").join("stray.bin").exists(), "fsck never deletes what it does not know");
}
