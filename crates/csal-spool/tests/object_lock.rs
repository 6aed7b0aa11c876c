//! Retention against a target that locks its objects itself (S3 Object
//! Lock on moto): the delete is refused, the copy stays indexed and
//! `stored` (counted as `locked`, not as a failure), and once the lock is
//! lifted the next sweep deletes it.

use csal_catalog::{CameraPolicy, Catalog, CopyState, MasterKey, NewModule, NewSegment, TimeSource};
use csal_core::{ByteStream, StorageModule, WriteMeta};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_the_provider_locks_stays_indexed_and_goes_once_released() {
    let Some(moto) = moto() else { return };
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
    let config = serde_json::json!({"bucket": bucket, "endpoint": moto, "region": "us-east-1", "access_key": "test",
        "secret_key": "testtest", "force_path_style": true, "object_lock": true, "object_lock_legal_hold": true});
    let module = NewModule {
        name: "vault".into(),
        label: None,
        provider_type: "s3".into(),
        is_enabled: true,
        config,
    };
    catalog.create_module(module).await.unwrap();
    catalog.set_policy("cam1", CameraPolicy::new(vec!["vault".into()]).with_retention_days(1)).await.unwrap();

    // One segment, two days old, stored on the vault under a legal hold.
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
