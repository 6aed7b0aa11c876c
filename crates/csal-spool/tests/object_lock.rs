//! Retention against a target that locks its objects itself (S3 Object
//! Lock on moto): the delete is refused, the copy stays indexed and
//! `stored` (counted as `locked`, not as a failure), and once the lock is
//! lifted the next sweep deletes it. A camera hold placed through
//! `csal_spool::holds` becomes the provider's own legal hold.

use csal_catalog::{
    CameraPolicy, Catalog, CopyState, MasterKey, NewHold, NewModule, NewSegment, SegmentRecord, TimeSource,
};
use csal_core::{ByteStream, ErrorKind, StorageModule, WriteMeta};
use csal_spool::retention::sweep;

csal_core::link_providers!(csal_s3);

const DAY: i64 = 86_400_000;

/// The moto endpoint; under CI a missing one is a failure, locally a skip.
fn moto() -> Option<String> {
    match std::env::var("CSAL_TEST_S3_MOTO_ENDPOINT") {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => panic!("CSAL_TEST_S3_MOTO_ENDPOINT is not set under CI"),
        _ => {
            eprintln!("SKIP: CSAL_TEST_S3_MOTO_ENDPOINT is not set (run through cargo xtask emulators run moto)");
            None
        }
    }
}

/// A catalog with one s3 module `vault` on a fresh Object Lock bucket of
/// moto (`extra` config on top), a 1-day retention policy of `cam1`, and
/// one two-day-old segment stored on the vault.
async fn setup(extra: serde_json::Value) -> Option<(tempfile::TempDir, Catalog, SegmentRecord, String)> {
    let moto = moto()?;
    let bucket = format!("csal-retain-{}", ulid::Ulid::new().to_string().to_lowercase());
    // moto takes unsigned requests; Object Lock is only set at creation.
    let made = reqwest::Client::new()
        .put(format!("{moto}/{bucket}"))
        .header("x-amz-bucket-object-lock-enabled", "true")
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "create an Object Lock bucket on moto: {}", made.status());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    let catalog = Catalog::open(&url, MasterKey::Explicit(MasterKey::generate().unwrap())).await.unwrap();
    let mut config = serde_json::json!({"bucket": bucket, "endpoint": moto, "region": "us-east-1",
        "access_key": "test", "secret_key": "testtest", "force_path_style": true, "object_lock": true});
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let module = NewModule { name: "vault".into(), label: None, provider_type: "s3".into(), is_enabled: true, config };
    catalog.create_module(module).await.unwrap();
    catalog.set_policy("cam1", CameraPolicy::new(vec!["vault".into()]).with_retention_days(1)).await.unwrap();

    let vault = catalog.router().module("vault").unwrap();
    let body = ByteStream::from_bytes(&b"evidence"[..]);
    let object = vault.write(body, WriteMeta::new("cam1/s1.ts")).await.unwrap().object_id;
    let start = csal_spool::retention::now_ms() - 2 * DAY;
    let seg = catalog
        .insert_segment(&NewSegment {
            id: ulid::Ulid::new().to_string(),
            camera_id: "cam1".into(),
            name: "s1.ts".into(),
            start_ms: start,
            duration_ms: Some(10_000),
            time_source: TimeSource::Received,
            size: 8,
            crc32c: crc32c::crc32c(b"evidence"),
            content_type: None,
            node_id: "node".into(),
            copies_required: 1,
        })
        .await
        .unwrap();
    catalog.begin_copy(&seg.id, "vault", "cam1/s1.ts").await.unwrap();
    catalog.copy_stored(&seg.id, "vault", &object).await.unwrap();
    catalog.mark_unspooled(&seg.id).await.unwrap();
    Some((dir, catalog, seg, object))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_the_provider_locks_stays_indexed_and_goes_once_released() {
    let Some((_dir, catalog, seg, object)) = setup(serde_json::json!({"object_lock_legal_hold": true})).await else {
        return;
    };
    let vault = catalog.router().module("vault").unwrap();
    let report = sweep(&catalog, csal_spool::retention::now_ms(), false).await.unwrap();
    assert_eq!((report.locked, report.failed, report.segments_deleted), (1, 0, 0), "{report:?}");
    let copies = catalog.segment_copies(&seg.id).await.unwrap();
    assert_eq!(copies[0].state, CopyState::Stored, "the bytes are intact, so the copy is still stored");
    assert!(copies[0].last_error.as_deref().is_some_and(|e| e.contains("legal hold")), "{copies:?}");
    assert_eq!(catalog.segment_by_id(&seg.id).await.unwrap().unwrap().copies_stored, 1);
    assert_eq!(vault.stat(&object).await.unwrap().size, 8, "still on the target");

    // Released on the server: the next sweep deletes storage, then the row.
    vault.set_legal_hold(&object, false).await.unwrap();
    let report = sweep(&catalog, csal_spool::retention::now_ms(), false).await.unwrap();
    assert_eq!((report.locked, report.segments_deleted), (0, 1), "{report:?}");
    assert!(catalog.segment_by_id(&seg.id).await.unwrap().is_none());
    assert!(vault.stat(&object).await.unwrap_err().is_not_found());
    catalog.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_hold_becomes_the_providers_hold_and_lifting_it_releases_the_copy() {
    let Some((_dir, catalog, seg, object)) = setup(serde_json::json!({})).await else { return };
    let vault = catalog.router().module("vault").unwrap();
    let hold = NewHold {
        camera_id: "cam1".into(),
        from_ms: None,
        to_ms: None,
        reason: "case 17".into(),
        created_by: "investigator".into(),
    };
    let (hold, on_provider) = csal_spool::holds::place(&catalog, hold).await.unwrap();
    assert_eq!((on_provider.copies, on_provider.errors.len()), (1, 0), "{on_provider:?}");
    // Past CSAL's own hold check: the provider itself refuses.
    let err = vault.delete(&object).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    assert_eq!(sweep(&catalog, csal_spool::retention::now_ms(), false).await.unwrap().held, 1);

    let (_, released) = csal_spool::holds::lift(&catalog, &hold.id).await.unwrap();
    assert_eq!(released.copies, 1, "{released:?}");
    let report = sweep(&catalog, csal_spool::retention::now_ms(), false).await.unwrap();
    assert_eq!((report.locked, report.segments_deleted), (0, 1), "{report:?}");
    assert!(catalog.segment_by_id(&seg.id).await.unwrap().is_none());
}
