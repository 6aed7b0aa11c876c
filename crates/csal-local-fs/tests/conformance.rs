//! The shared conformance suite on `local_fs`, plus what only a local disk can show.

csal_core::link_providers!(csal_local_fs);

use csal_core::{ByteStream, ErrorKind, HealthStatus, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
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

/// Backdate a file's modification time by `age`.
fn age_file(path: &std::path::Path, age: std::time::Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - age).unwrap();
}

#[tokio::test]
async fn stale_temp_files_are_swept_at_start_and_on_health_checks() {
    let root = tempfile::tempdir().unwrap();
    let tmp = root.path().join(".csal-tmp");
    std::fs::create_dir(&tmp).unwrap();
    let two_days = std::time::Duration::from_secs(2 * 24 * 3600);
    for name in ["crashed-1.part", "crashed-2.part", "in-progress.part"] {
        std::fs::write(tmp.join(name), b"half a segment").unwrap();
    }
    age_file(&tmp.join("crashed-1.part"), two_days);
    age_file(&tmp.join("crashed-2.part"), two_days);
    let r = router(json!({ "root": root.path(), "min_free_mb": 0 }));
    r.module("disk").unwrap();
    assert!(!tmp.join("crashed-1.part").exists() && !tmp.join("crashed-2.part").exists(), "not swept at start");
    assert!(tmp.join("in-progress.part").exists(), "a recent temp file (a live write) was removed");

    // A process that crashed while this one runs: found by the next health check.
    std::fs::write(tmp.join("crashed-3.part"), b"x").unwrap();
    age_file(&tmp.join("crashed-3.part"), two_days);
    let report = r.health_check("disk").await.unwrap();
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert!(!tmp.join("crashed-3.part").exists(), "not swept by the health check");
    assert_eq!(report.details.get("stale_temp_files_removed"), Some(&json!(1)), "{report:?}");
    assert!(tmp.join("in-progress.part").exists());
}

#[tokio::test]
async fn new_files_and_folders_get_the_configured_modes_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // Defaults: 0640 / 0750 (a 022 umask alone would give 0644 / 0755).
    let root = tempfile::tempdir().unwrap();
    let r = router(json!({ "root": root.path() }));
    let id = r.write("disk", ByteStream::from_bytes(&b"x"[..]), WriteMeta::new("cam/day/seg.mp4")).await.unwrap();
    assert_eq!(mode(&root.path().join(&id.object_id)), 0o640);
    assert_eq!(mode(&root.path().join("cam")), 0o750);
    assert_eq!(mode(&root.path().join("cam/day")), 0o750);
    // Wider than the umask allows: still exactly what the config says.
    let root = tempfile::tempdir().unwrap();
    let r = router(json!({ "root": root.path(), "file_mode": "0660", "dir_mode": "0770" }));
    let id = r.write("disk", ByteStream::from_bytes(&b"x"[..]), WriteMeta::new("cam/seg.mp4")).await.unwrap();
    assert_eq!(mode(&root.path().join(&id.object_id)), 0o660);
    assert_eq!(mode(&root.path().join("cam")), 0o770);
    // A mode CSAL itself could not work with is a config error naming the field.
    let r = router(json!({ "root": root.path(), "file_mode": "0440" }));
    match &r.instances()[0].status {
        csal_core::InstanceStatus::Offline { kind, reason } => {
            assert_eq!(*kind, ErrorKind::InvalidConfig);
            assert!(reason.contains("file_mode"), "{reason}");
        }
        other => panic!("expected offline, got {other:?}"),
    }
}

#[tokio::test]
async fn a_huge_min_free_mb_degrades_health_instead_of_overflowing() {
    let root = tempfile::tempdir().unwrap();
    let r = router(json!({ "root": root.path(), "min_free_mb": u64::MAX }));
    let report = r.health_check("disk").await.unwrap();
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_the_last_file_of_a_folder_never_fails_a_write_into_it() {
    // Each round: a folder with one file; delete that file (which prunes the
    // folder once it is empty) while a write links a new file into it.
    let root = tempfile::tempdir().unwrap();
    let r = std::sync::Arc::new(router(json!({ "root": root.path(), "fsync": false })));
    let mut failures = Vec::new();
    for round in 0..400 {
        let hint = format!("cam{}/seg.bin", round % 8);
        let old = r.write("disk", ByteStream::from_bytes(&b"old"[..]), WriteMeta::new(hint.clone())).await.unwrap();
        let (r1, r2) = (r.clone(), r.clone());
        let delete = tokio::spawn(async move { r1.delete("disk", &old.object_id).await });
        let write =
            tokio::spawn(
                async move { r2.write("disk", ByteStream::from_bytes(&b"new"[..]), WriteMeta::new(hint)).await },
            );
        delete.await.unwrap().unwrap();
        match write.await.unwrap() {
            Ok(receipt) => {
                let back = r.read("disk", &receipt.object_id, None).await.unwrap().collect_limited(16).await.unwrap();
                assert_eq!(back.as_ref(), b"new");
                r.delete("disk", &receipt.object_id).await.unwrap();
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{} writes failed, e.g. {}", failures.len(), failures[0]);
}

#[tokio::test]
async fn listing_never_follows_a_symlink_out_of_the_root() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
    let r = router(json!({ "root": root.path() }));
    r.write("disk", ByteStream::from_bytes(&b"x"[..]), WriteMeta::new("cam/a.bin")).await.unwrap();
    let all = r.list("disk", &csal_core::ListRequest::new("")).await.unwrap();
    assert!(all.objects.iter().all(|o| o.object_id.starts_with("cam/")), "{:?}", all.objects);
    let e = r.list("disk", &csal_core::ListRequest::new("link")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

#[tokio::test]
async fn pages_come_in_id_order_across_nested_folders() {
    let root = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    // `a-b` sorts before `a/x` (`-` < `/`): folder order must follow id order.
    for rel in ["a/1", "a/2/deep", "a-b", "a-b.d/1", "a.c", "a0", "b/x", "b.x", "top"] {
        let path = root.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rel).unwrap();
        ids.push(rel.to_owned());
    }
    ids.sort();
    let r = router(json!({ "root": root.path() }));
    for limit in 1..=ids.len() {
        let (mut got, mut request) = (Vec::new(), csal_core::ListRequest::new("").with_limit(limit));
        loop {
            let page = r.list("disk", &request).await.unwrap();
            got.extend(page.objects.into_iter().map(|o| o.object_id));
            match page.next_page {
                Some(t) => request.continuation = Some(t),
                None => break,
            }
        }
        assert_eq!(got, ids, "limit {limit}");
    }
}

#[tokio::test]
async fn paging_through_settled_folders_sees_a_file_added_mid_listing() {
    // Folders older than a couple of seconds let a page continue from where
    // the previous one stopped without reading them again; a folder that
    // changes in between must be read again, or the new file is missed.
    let root = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for day in 0..3 {
        let dir = root.path().join(format!("cam/d{day}"));
        std::fs::create_dir_all(&dir).unwrap();
        for seg in 0..700 {
            std::fs::File::create(dir.join(format!("s{seg:04}.mp4"))).unwrap();
            ids.push(format!("cam/d{day}/s{seg:04}.mp4"));
        }
    }
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for dir in ["", "cam", "cam/d0", "cam/d1", "cam/d2"] {
        std::fs::File::open(root.path().join(dir)).unwrap().set_modified(an_hour_ago).unwrap();
    }
    let r = router(json!({ "root": root.path() }));
    let mut request = csal_core::ListRequest::new("cam").with_limit(100);
    let mut got = Vec::new();
    let mut added = false;
    loop {
        let page = r.list("disk", &request).await.unwrap();
        got.extend(page.objects.into_iter().map(|o| o.object_id));
        if got.len() >= 800 && !added {
            // Behind the listing's position, in the folder it is walking.
            std::fs::File::create(root.path().join("cam/d1/s0150-late.mp4")).unwrap();
            ids.push("cam/d1/s0150-late.mp4".into());
            added = true;
        }
        match page.next_page {
            Some(t) => request.continuation = Some(t),
            None => break,
        }
    }
    ids.sort();
    assert_eq!(got, ids);
}

#[tokio::test]
async fn flipped_byte_on_disk_is_an_integrity_error() {
    let root = tempfile::tempdir().unwrap();
    let r = router(json!({ "root": root.path(), "min_free_mb": 0 }));
    assert!(r.module("disk").unwrap().capabilities().verified_reads);
    csal_testkit::file_protocols::flipped_byte_is_an_integrity_error(&r, "disk", root.path()).await;
}
