//! The shared conformance suite on `local_fs`, plus what only a local disk can show.

csal_core::link_providers!(csal_local_fs);

use csal_core::{ByteStream, ErrorKind, HealthStatus, InstanceDefinition, StorageRouter, WriteMeta};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_fs_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let target = csal_conformance::Target::new("local_fs", "local_fs", json!({ "root": dir.path(), "min_free_mb": 0 }));
    csal_conformance::run(target).await.assert_passed();
    // No temp dir at all when the suite did not run (provider not selected by
    // `cargo xtask conformance --provider ...`).
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(".csal-tmp")).into_iter().flatten().flatten().collect();
    assert!(leftovers.is_empty(), "temp files left behind: {leftovers:?}");
}

fn router(config: serde_json::Value) -> StorageRouter {
    StorageRouter::from_definitions(&[InstanceDefinition::new("disk", "local_fs", config)])
}

#[tokio::test]
async fn hostile_ids_touch_nothing_outside_the_root() {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("root");
    std::fs::write(parent.path().join("outside.txt"), b"keep me").unwrap();
    let r = router(json!({ "root": root }));
    for id in ["../outside.txt", "a/../../outside.txt", "/etc/passwd", "..", "x/..\\..\\outside.txt"] {
        let e = r.delete("disk", id).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{id}");
        assert_eq!(r.read("disk", id, None).await.unwrap_err().kind(), ErrorKind::InvalidInput, "{id}");
    }
    assert_eq!(std::fs::read(parent.path().join("outside.txt")).unwrap(), b"keep me");
}

#[tokio::test]
async fn symlink_inside_root_is_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
    let r = router(json!({ "root": root.path() }));
    assert_eq!(r.read("disk", "link/secret.txt", None).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(r.delete("disk", "link/secret.txt").await.unwrap_err().kind(), ErrorKind::InvalidInput);
    // A write whose hint goes through the symlink is refused, not written outside.
    let e = r.write("disk", ByteStream::from_bytes(&b"x"[..]), WriteMeta::new("link/new.bin")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn low_free_space_degrades_health() {
    let root = tempfile::tempdir().unwrap();
    let r = router(json!({ "root": root.path(), "min_free_mb": u64::MAX / (1024 * 1024 * 2) }));
    let report = r.health_check("disk").await.unwrap();
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
    assert!(report.last_error.unwrap().contains("free"));
}

#[tokio::test]
async fn relative_root_is_invalid_config() {
    let r = router(json!({ "root": "relative/dir" }));
    let info = &r.instances()[0];
    match &info.status {
        csal_core::InstanceStatus::Offline { kind, reason } => {
            assert_eq!(*kind, ErrorKind::InvalidConfig);
            assert!(reason.contains("'root'"), "{reason}");
        }
        other => panic!("expected offline, got {other:?}"),
    }
}

#[tokio::test]
async fn dropped_write_leaves_no_temp_file() {
    use futures::StreamExt;
    let root = tempfile::tempdir().unwrap();
    let r = router(json!({ "root": root.path() }));
    // A body that yields one chunk, reports when the writer asks for more
    // (so the chunk is on disk), then never ends.
    let (asked_for_more, mut asked) = tokio::sync::mpsc::channel::<()>(1);
    let first = futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"partial"))]);
    let then = futures::stream::once(async move {
        let _ = asked_for_more.send(()).await;
        futures::future::pending::<csal_core::Result<bytes::Bytes>>().await
    });
    let body = ByteStream::new(first.chain(then), None);
    let tmp = root.path().join(".csal-tmp");
    {
        let write = r.write("disk", body, WriteMeta::new("cam/seg.mp4"));
        tokio::pin!(write);
        tokio::select! {
            _ = &mut write => panic!("an endless write finished"),
            _ = asked.recv() => {}
        }
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 1, "the write should have a temp file");
    } // the write future is dropped here: cancelled
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "temp file left after cancel");
    assert!(!root.path().join("cam").exists(), "a partial object became visible");
}
