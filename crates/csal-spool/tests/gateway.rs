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

csal_core::link_providers!(csal_local_fs, csal_memory, csal_webdav);

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
        let mut config = GatewayConfig::new(SpoolConfig::new(self.spool_dir(), max_bytes));
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
    // A reconciliation now (another node's, or the schedule's) leaves the
    // segment to the delivery worker: no adoption, no redelivery, no finding.
    let fsck = csal_spool::fsck::fsck(&site.catalog, &repair()).await.unwrap();
    assert!(fsck.findings.is_empty(), "{:?}", fsck.findings);
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

    let fixed = fsck(&site.catalog, &repair()).await.unwrap();
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

/// A provider that reports a quota (here RFC 4331 on csal-fakes' WebDAV
/// server) is forecast from it: the free bytes are the quota left, and a
/// nearly used quota at the measured rate turns the target degraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_a_quota_is_forecast_from_the_quota_left() {
    use csal_core::HealthStatus;
    use csal_spool::capacity::CapacityBoard;
    const MIB: u64 = 1 << 20;
    let fake = csal_fakes::webdav::WebDavFake::start().await;
    fake.set_quota(Some(40 * MIB));
    let site = Site::new(&["disk"], 1).await;
    let dav = NewModule {
        name: "dav".into(),
        label: None,
        provider_type: "webdav".into(),
        is_enabled: true,
        config: serde_json::json!({ "url": fake.url() }),
    };
    site.catalog.create_module(dav).await.unwrap();
    site.catalog.set_policy("cam1", CameraPolicy::new(vec!["dav".to_owned()])).await.unwrap();
    let router = site.catalog.router();
    let gw = site.gateway().await;
    for n in 0..4u8 {
        put(&gw, &format!("q{n}.ts"), &segment_bytes(n, MIB as usize)).await.unwrap();
    }
    gw.drain(WAIT).await.unwrap();
    router.health_check("dav").await.unwrap();
    let report = CapacityBoard::new(3.0).refresh(&site.catalog).await.unwrap();
    let target = report.targets.iter().find(|t| t.target == "dav").expect("the dav target");
    assert_eq!((target.stored_copies, target.free_bytes), (4, Some(36 * MIB)), "{target:?}");
    // 4 MiB within the five-minute minimum span is over 1 GiB a day: the
    // 36 MiB left last well under the three-day horizon.
    assert!(target.days_left.is_some_and(|d| d < 3.0) && target.warning.is_some(), "{target:?}");
    let health = router.module("dav").unwrap().last_health().unwrap();
    assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
    assert!(health.last_error.as_deref().unwrap().starts_with("full in "), "{health:?}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filling_target_turns_degraded_days_before_it_is_full() {
    use csal_core::HealthStatus;
    use csal_spool::capacity::CapacityBoard;
    const MIB: u64 = 1 << 20;
    let site = Site::new(&["disk"], 1).await;
    let router = site.catalog.router();
    // The real disk's free space; the target keeps all but `usable` of it
    // as its reserve (min_free_mb), so CSAL may write only `usable`.
    let first = router.health_check("disk").await.unwrap();
    let disk_free = first.details["disk_free_bytes"].as_u64().expect("local_fs reports the disk's free space");
    let usable = (8 << 30).min(disk_free / 2);
    let reserve_mb = (disk_free - usable) / MIB;
    let root = site.dir.path().join("targets").join("disk");
    let update = csal_catalog::ModuleUpdate {
        config: Some(serde_json::json!({"root": root, "min_free_mb": reserve_mb})),
        ..Default::default()
    };
    site.catalog.update_module("disk", update).await.unwrap();
    let board = CapacityBoard::new(3.0);
    // Nothing recorded yet: no rate, no forecast, healthy.
    router.health_check("disk").await.unwrap();
    let idle = board.refresh(&site.catalog).await.unwrap();
    let disk = &idle.targets[0];
    assert_eq!((disk.bytes_per_day, disk.days_left, disk.warning.as_deref()), (0, None, None), "{disk:?}");
    assert_eq!(router.module("disk").unwrap().last_health().unwrap().status, HealthStatus::Ok);

    // A burst measured over five minutes: usable/288 in five minutes fills
    // `usable` in a day (disk churn from other processes moves it a little).
    let gw = site.gateway().await;
    let per_segment = MIB as usize;
    let segments = (usable / 288).div_ceil(MIB);
    for n in 0..segments {
        let data = segment_bytes(n as u8, per_segment);
        put(&gw, &format!("c{n:04}.ts"), &data).await.unwrap();
    }
    gw.drain(WAIT).await.unwrap();
    router.health_check("disk").await.unwrap();
    let filling = board.refresh(&site.catalog).await.unwrap();
    let disk = &filling.targets[0];
    assert_eq!(disk.stored_copies, segments);
    assert_eq!(disk.stored_bytes, segments * MIB);
    let days = disk.days_left.expect("a forecast");
    assert!((0.4..2.0).contains(&days), "about a day left, got {days} ({disk:?})");
    let health = router.module("disk").unwrap().last_health().unwrap();
    assert_eq!(health.status, HealthStatus::Degraded, "{health:?}");
    assert!(health.last_error.as_deref().unwrap().starts_with("full in "), "{health:?}");
    assert!(health.details["days_left"].as_f64().is_some());
    assert_eq!(board.latest().as_ref(), Some(&filling));

    // With a horizon shorter than what is left, the same target is fine.
    router.health_check("disk").await.unwrap();
    let relaxed = CapacityBoard::new(0.2).refresh(&site.catalog).await.unwrap();
    assert_eq!(relaxed.targets[0].warning, None);
    assert_eq!(router.module("disk").unwrap().last_health().unwrap().status, HealthStatus::Ok);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_without_a_policy_records_through_the_default_one() {
    let site = Site::new(&["disk-a", "disk-b"], 1).await;
    let gw = site.gateway().await;
    // No policy for cam2 and no default: refused before anything is kept.
    let data = segment_bytes(1, 5_000);
    let refused = gw.ingest(IngestRequest::new("cam2", "x.ts"), one_shot(&data)).await;
    assert!(refused.is_err(), "no policy, no default: refused");
    site.catalog.set_policy(csal_catalog::DEFAULT_POLICY, vec!["disk-b".to_owned()]).await.unwrap();
    let IngestOutcome::Created(r) = gw.ingest(IngestRequest::new("cam2", "x.ts"), one_shot(&data)).await.unwrap()
    else {
        panic!("created")
    };
    let r = delivered(&gw, &r, 1).await;
    let copies = site.catalog.segment_copies(&r.id).await.unwrap();
    assert_eq!(copies.iter().map(|c| c.target.as_str()).collect::<Vec<_>>(), ["disk-b"]);
    // Retention and fsck walk it with the default; cam1 keeps its own.
    let applied = site.catalog.policies_in_effect().await.unwrap();
    let summary: Vec<_> = applied.iter().map(|a| (a.camera_id.as_str(), a.is_default)).collect();
    assert_eq!(summary, [("cam1", false), ("cam2", true)]);
    assert_eq!(site.catalog.policy_in_effect("cam2").await.unwrap().0, "*");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_catches_a_target_that_answers_but_cannot_take_writes() {
    use csal_core::HealthStatus;
    let site = Site::new(&["disk"], 1).await;
    let root = site.dir.path().join("targets").join("disk");
    assert_eq!(site.catalog.set_canary("nope", true).await.unwrap_err().kind(), ErrorKind::NotFound);
    site.catalog.set_canary("disk", true).await.unwrap();
    let ok = site.catalog.test_module("disk", false).await.unwrap();
    assert_eq!((ok.status, ok.details.get("canary")), (HealthStatus::Ok, Some(&serde_json::json!("ok"))), "{ok:?}");
    let left: Vec<_> = walk(&root);
    assert!(left.is_empty(), "the canary cleans up after itself: {left:?}");
    // The canary's folder is a file: health still answers, writes fail.
    let _ = std::fs::remove_dir_all(root.join("csal-canary"));
    std::fs::write(root.join("csal-canary"), b"in the way").unwrap();
    let plain = site.catalog.router().health_check("disk").await.unwrap();
    assert_eq!(plain.status, HealthStatus::Ok, "the plain check does not see it");
    let caught = site.catalog.test_module("disk", false).await.unwrap();
    assert_eq!(caught.status, HealthStatus::Offline, "{caught:?}");
    assert!(caught.last_error.as_deref().unwrap().starts_with("canary failed"), "{caught:?}");
    // Off again: the test is the plain one.
    site.catalog.set_canary("disk", false).await.unwrap();
    assert_eq!(site.catalog.test_module("disk", false).await.unwrap().status, HealthStatus::Ok);
    assert_eq!(site.catalog.test_module("disk", true).await.unwrap().status, HealthStatus::Offline, "forced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_catalog_checks_health_itself_and_writes_skip_an_offline_target() {
    use csal_core::{HealthStatus, WriteMeta};
    let site = Site::new(&["a", "b"], 1).await;
    // Target a's folder disappears (an unmounted disk).
    std::fs::remove_dir_all(site.dir.path().join("targets").join("a")).unwrap();
    let checks = site.catalog.spawn_health_checks(Duration::from_millis(50));
    let router = site.catalog.router();
    let deadline = tokio::time::Instant::now() + WAIT;
    while router.module("a").unwrap().last_health().is_none_or(|h| h.status != HealthStatus::Offline) {
        assert!(tokio::time::Instant::now() < deadline, "no health round marked a offline");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let data = segment_bytes(3, 1000);
    let written = site.catalog.write_for_camera("cam1", one_shot(&data), WriteMeta::new("x.bin")).await.unwrap();
    assert_eq!(written.target, "b");
    assert!(written.skipped.is_empty(), "the offline target went last, so a one-shot body was not spent on it");
    checks.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_honour_the_targets_upload_limit() {
    let site = Site::new(&["disk-a"], 1).await;
    site.catalog.set_bandwidth("disk-a", Some("32KiB/s")).await.unwrap();
    assert!(site.catalog.set_bandwidth("disk-a", Some("fast")).await.is_err());
    assert!(site.catalog.set_bandwidth("nope", Some("1MiB/s")).await.is_err());
    site.catalog.apply_bandwidth(0, None).await.unwrap();
    assert_eq!(site.catalog.router().bandwidth().instance("disk-a").rate(), Some(32 << 10));
    let gw = site.gateway().await;
    let data = segment_bytes(9, 96 << 10);
    let started = std::time::Instant::now();
    let IngestOutcome::Created(r) = put(&gw, "slow.ts", &data).await.unwrap() else { panic!("created") };
    delivered(&gw, &r, 1).await;
    // One second's burst (32 KiB) at once, the other 64 KiB at 32 KiB/s.
    assert!(started.elapsed() >= Duration::from_millis(1800), "{:?}", started.elapsed());
    assert_eq!(site.stored("disk-a")[0].1, data.to_vec());
    // A node-wide schedule: off at this minute, limited at another.
    let schedule = csal_core::layers::BandwidthSchedule::parse("08:00,1MiB/s 19:00,off").unwrap();
    site.catalog.apply_bandwidth(9 * 60, Some(&schedule)).await.unwrap();
    assert_eq!(site.catalog.router().bandwidth().node().rate(), Some(1 << 20));
    site.catalog.set_bandwidth("disk-a", None).await.unwrap();
    site.catalog.apply_bandwidth(20 * 60, Some(&schedule)).await.unwrap();
    let limits = site.catalog.router().bandwidth().clone();
    assert_eq!((limits.node().rate(), limits.instance("disk-a").rate()), (None, None));
    gw.shutdown().await;
}

/// Fsck options of a repairing run over every camera.
fn repair() -> csal_spool::fsck::FsckOptions {
    let mut options = csal_spool::fsck::FsckOptions::default();
    options.repair = true;
    options
}
