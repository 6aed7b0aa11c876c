//! The shared conformance suite on `db`, with SQLite (always) and PostgreSQL
//! (`CSAL_TEST_POSTGRES_URL`, exported by `cargo xtask` from its throwaway
//! cluster), plus what only a database store can show.

csal_core::link_providers!(csal_db);

use std::time::Duration;

use bytes::Bytes;
use csal_core::{ByteRange, ByteStream, ErrorKind, InstanceDefinition, StorageError, StorageRouter, WriteMeta};
use futures::StreamExt;
use serde_json::json;

/// A fresh table prefix, so runs never see each other's objects.
fn prefix() -> String {
    format!("t{}_", ulid::Ulid::new().to_string().to_lowercase())
}

/// `(url without password, password)` of the test server, or `None` (skip;
/// a failure under CI).
fn postgres(label: &str) -> Option<(String, Option<String>)> {
    let url = csal_conformance::require_env("CSAL_TEST_POSTGRES_URL", label, "db")?;
    let mut parsed = url::Url::parse(&url).expect("CSAL_TEST_POSTGRES_URL is a URL");
    let password = parsed.password().map(str::to_owned);
    let _ = parsed.set_password(None);
    Some((parsed.to_string(), password))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn db_on_sqlite_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/objects.db", dir.path().display());
    let table_prefix = prefix();
    // SQLite has no password: its "bad credentials" are read-only access to
    // an existing store, which must fail as Auth too.
    let def = InstanceDefinition::new("setup", "db", json!({ "url": url, "table_prefix": table_prefix }));
    StorageRouter::from_definitions(&[def]).validate("setup").await.unwrap();
    let read_only = json!({ "url": format!("{url}?mode=ro"), "table_prefix": table_prefix });
    let target = csal_conformance::Target::new("db@sqlite", "db", json!({ "url": url, "table_prefix": table_prefix }))
        .bad_credentials(read_only);
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn db_on_postgres_passes_conformance() {
    let label = "db@postgres";
    let Some((url, password)) = postgres(label) else { return };
    let config = json!({ "url": url, "password": password, "table_prefix": prefix() });
    let bad = json!({ "url": url, "password": "wrong-password-xyzzy", "table_prefix": prefix() });
    let target = csal_conformance::Target::new(label, "db", config).bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

struct Store {
    router: StorageRouter,
    _dir: tempfile::TempDir,
}

fn sqlite_store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/objects.db", dir.path().display());
    let def = InstanceDefinition::new("db", "db", json!({ "url": url, "table_prefix": "x_" }));
    Store { router: StorageRouter::from_definitions(&[def]), _dir: dir }
}

fn stores() -> Vec<(&'static str, Store)> {
    let mut all = vec![("sqlite", sqlite_store())];
    if let Ok(url) = std::env::var("CSAL_TEST_POSTGRES_URL") {
        let mut parsed = url::Url::parse(&url).unwrap();
        let password = parsed.password().map(str::to_owned);
        let _ = parsed.set_password(None);
        let cfg = json!({ "url": parsed.to_string(), "password": password, "table_prefix": prefix() });
        let def = InstanceDefinition::new("db", "db", cfg);
        all.push((
            "postgres",
            Store { router: StorageRouter::from_definitions(&[def]), _dir: tempfile::tempdir().unwrap() },
        ));
    } else {
        eprintln!("SKIP postgres: CSAL_TEST_POSTGRES_URL is not set");
    }
    all
}

/// Bytes where every position is distinguishable.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_body_leaves_nothing_behind() {
    for (backend, s) in stores() {
        let good = futures::stream::iter(vec![Ok(Bytes::from(vec![1u8; 1_500_000]))]);
        let broken = futures::stream::once(async { Err(StorageError::transient("camera stream broke")) });
        let body = ByteStream::new(good.chain(broken), None);
        let e = s.router.write("db", body, WriteMeta::new("cam/broken.mp4")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Transient, "{backend}: {e}");
        let page = s.router.list("db", &csal_core::ListRequest::new("")).await.unwrap();
        assert!(page.objects.is_empty(), "{backend}: a failed write left {:?}", page.objects);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_reads_across_chunk_boundaries_are_exact() {
    let chunk = csal_db::CHUNK_SIZE as u64;
    let data = pattern(2 * csal_db::CHUNK_SIZE + 1000);
    let size = data.len() as u64;
    for (backend, s) in stores() {
        let r = s.router.write("db", ByteStream::from_bytes(data.clone()), WriteMeta::new("big.bin")).await.unwrap();
        assert_eq!(r.size, size);
        let ranges = [
            ByteRange::inclusive(chunk - 3, chunk + 2),
            ByteRange::inclusive(0, 0),
            ByteRange::inclusive(2 * chunk, 2 * chunk + 999),
            ByteRange::from(chunk),
            ByteRange::suffix(1001),
            ByteRange::inclusive(5, size + 100),
        ];
        for range in ranges {
            let span = range.resolve(size).unwrap();
            let got = s.router.read("db", &r.object_id, Some(range)).await.unwrap();
            let got = got.collect_limited(4 << 20).await.unwrap();
            assert_eq!(got.as_ref(), &data[span.start as usize..span.end as usize], "{backend} {range}");
        }
        let e = s.router.read("db", &r.object_id, Some(ByteRange::from(size))).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RangeNotSatisfiable, "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_write_leaves_nothing_behind() {
    for (backend, s) in stores() {
        let (asked_tx, mut asked) = tokio::sync::mpsc::channel::<()>(1);
        let first = futures::stream::iter(vec![Ok(Bytes::from(vec![7u8; 2 * csal_db::CHUNK_SIZE]))]);
        let then = futures::stream::once(async move {
            let _ = asked_tx.send(()).await;
            futures::future::pending::<csal_core::Result<Bytes>>().await
        });
        {
            let write = s.router.write("db", ByteStream::new(first.chain(then), None), WriteMeta::new("cancel.bin"));
            tokio::pin!(write);
            tokio::select! {
                _ = &mut write => panic!("an endless write finished"),
                _ = asked.recv() => {}
            }
        }
        // The dropped transaction is rolled back; the next operations see no
        // trace of it (and are not blocked by it).
        let page = tokio::time::timeout(Duration::from_secs(30), s.router.list("db", &csal_core::ListRequest::new("")))
            .await
            .expect("list is not blocked by the cancelled write")
            .unwrap();
        assert!(page.objects.is_empty(), "{backend}: {:?}", page.objects);
        let ok = s.router.write("db", ByteStream::from_bytes(&b"after"[..]), WriteMeta::new("after.bin")).await;
        assert!(ok.is_ok(), "{backend}: {ok:?}");
    }
}

#[tokio::test]
async fn unreachable_database_is_offline_not_a_panic() {
    let def = InstanceDefinition::new(
        "db",
        "db",
        json!({ "url": "sqlite:///proc/definitely/not/writable/objects.db", "table_prefix": "x_" }),
    );
    let router = StorageRouter::from_definitions(&[def]);
    let report = router.health_check("db").await.unwrap();
    assert_eq!(report.status, csal_core::HealthStatus::Offline, "{report:?}");
    assert!(router.stat("db", "a").await.is_err());
}

#[tokio::test]
async fn down_postgres_fails_fast_as_transient() {
    // Nothing listens on port 1: the connection is refused at once, and that
    // must not be retried for the whole connect timeout.
    let def = InstanceDefinition::new(
        "down",
        "db",
        json!({ "url": "postgres://csal@127.0.0.1:1/csal", "password": "pw-xyzzy-123", "connect_timeout_secs": 30 }),
    );
    let router = StorageRouter::from_definitions(&[def]);
    let started = std::time::Instant::now();
    let e = router.write("down", ByteStream::from_bytes(&b"x"[..]), WriteMeta::new("x")).await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(!e.to_string().contains("pw-xyzzy-123"), "{e}");
    let report = router.health_check("down").await.unwrap();
    assert_eq!(report.status, csal_core::HealthStatus::Offline);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}
