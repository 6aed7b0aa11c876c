//! Server-side immutability (S3 Object Lock) and the sweep of unfinished
//! multipart uploads, against moto (which implements legal holds,
//! retention and ListMultipartUploads / ListParts). Everything goes through
//! a `StorageRouter`, so the core layers are in the loop.

csal_core::link_providers!(csal_s3);

mod common;

use aws_sdk_s3::error::ProvideErrorMetadata;
use bytes::Bytes;
use common::Server;
use csal_core::{
    ByteStream, ErrorClass, ErrorKind, InstanceDefinition, LayerConfig, StaleUploads, StorageModule, StorageRouter,
    WriteMeta,
};

/// A fresh Object Lock bucket (Object Lock can only be enabled at creation).
async fn lock_bucket(server: &Server) -> String {
    let bucket = format!("csal-lock-{}", ulid::Ulid::new().to_string().to_lowercase());
    let module = server.module(&bucket);
    module
        .sdk_client()
        .create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("create an Object Lock bucket");
    bucket
}

fn router(server: &Server, bucket: &str, extra: serde_json::Value) -> StorageRouter {
    let mut config = server.config(bucket);
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let router = StorageRouter::new(&[InstanceDefinition::new("vault", "s3", config)], LayerConfig::default());
    if let Err(e) = router.module("vault") {
        panic!("vault did not load: {e}");
    }
    router
}

async fn write(router: &StorageRouter, len: usize) -> String {
    let body = ByteStream::from_bytes(Bytes::from(vec![7u8; len]));
    router.write("vault", body, WriteMeta::new("cam1/evidence.ts")).await.expect("write").object_id
}

/// Every version id of `key` (objects and delete markers).
async fn versions(sdk: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<String> {
    let out = sdk.list_object_versions().bucket(bucket).prefix(key).send().await.expect("list versions");
    let objects = out.versions().iter().filter(|v| v.key() == Some(key)).filter_map(|v| v.version_id());
    let markers = out.delete_markers().iter().filter(|m| m.key() == Some(key)).filter_map(|m| m.version_id());
    objects.chain(markers).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legal_hold_written_by_csal_stops_every_delete_until_lifted() {
    let Some(server) = Server::moto() else { return };
    let bucket = lock_bucket(&server).await;
    let router = router(&server, &bucket, serde_json::json!({"object_lock": true, "object_lock_legal_hold": true}));
    let module = router.module("vault").unwrap();
    assert!(module.capabilities().legal_hold);
    // Both paths: one PUT, and a multipart upload (two 5 MiB parts).
    for len in [1000, 6 * 1024 * 1024] {
        let id = write(&router, len).await;
        let sdk = server.module(&bucket);
        let sdk = sdk.sdk_client();
        let ids = versions(sdk, &bucket, &id).await;
        assert_eq!(ids.len(), 1, "{len} B: one version");

        // A direct S3 call, past CSAL, cannot remove the bytes.
        let direct = sdk.delete_object().bucket(&bucket).key(&id).version_id(&ids[0]).send().await;
        let refused = direct.expect_err("S3 must refuse to delete a held version");
        assert_eq!(refused.as_service_error().and_then(|e| e.code()), Some("AccessDenied"), "{len} B");

        // CSAL's delete: a classified, permanent error naming the hold, not retried.
        let err = router.delete("vault", &id).await.expect_err("a held object cannot be deleted");
        assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert!(err.to_string().contains("legal hold"), "{err}");
        assert_eq!(versions(sdk, &bucket, &id).await, ids, "{len} B: the version is still there");
        assert_eq!(router.stat("vault", &id).await.unwrap().size, len as u64);

        // Lifted through the contract, the delete removes every version.
        module.set_legal_hold(&id, false).await.expect("lift the hold");
        router.delete("vault", &id).await.expect("delete after the hold is lifted");
        assert!(versions(sdk, &bucket, &id).await.is_empty(), "{len} B: no version left behind");
        router.delete("vault", &id).await.expect("deleting it again is success");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hold_set_later_and_a_retention_period_are_enforced_by_s3() {
    let Some(server) = Server::moto() else { return };
    let bucket = lock_bucket(&server).await;
    // An Object Lock bucket without locks on write: holds come later.
    let plain = router(&server, &bucket, serde_json::json!({"object_lock": true}));
    let id = write(&plain, 100).await;
    plain.module("vault").unwrap().set_legal_hold(&id, true).await.expect("put a hold");
    let err = plain.delete("vault", &id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    plain.module("vault").unwrap().set_legal_hold(&id, false).await.unwrap();
    plain.delete("vault", &id).await.expect("deleted once lifted");

    // COMPLIANCE retention of a day: no one can delete it before then.
    let retained = router(
        &server,
        &bucket,
        serde_json::json!({"object_lock": true, "object_lock_mode": "COMPLIANCE", "object_lock_days": 1}),
    );
    let id = write(&retained, 100).await;
    let err = retained.delete("vault", &id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked, "{err}");
    assert!(err.to_string().contains("COMPLIANCE retention until"), "{err}");
    let sdk = server.module(&bucket);
    let ids = versions(sdk.sdk_client(), &bucket, &id).await;
    let direct = sdk.sdk_client().delete_object().bucket(&bucket).key(&id).version_id(&ids[0]).send().await;
    assert!(direct.is_err(), "S3 itself keeps a retained version");
}

#[tokio::test(flavor = "multi_thread")]
async fn holds_are_unsupported_without_an_object_lock_bucket() {
    let Some(server) = Server::moto() else { return };
    server.ensure_bucket(common::BUCKET).await;
    let router = StorageRouter::new(
        &[InstanceDefinition::new("vault", "s3", server.config(common::BUCKET))],
        LayerConfig::default(),
    );
    let module = router.module("vault").unwrap();
    assert!(!module.capabilities().legal_hold);
    let id = write(&router, 10).await;
    let err = module.set_legal_hold(&id, true).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    router.delete("vault", &id).await.unwrap();
}

/// An upload a killed writer left: created, one part sent, never finished.
async fn abandoned_upload(server: &Server, bucket: &str, key: &str) -> String {
    let module = server.module(bucket);
    let sdk = module.sdk_client();
    let created = sdk.create_multipart_upload().bucket(bucket).key(key).send().await.unwrap();
    let id = created.upload_id().unwrap().to_owned();
    let part = aws_sdk_s3::primitives::ByteStream::from(vec![1u8; 5 * 1024 * 1024]);
    sdk.upload_part().bucket(bucket).key(key).upload_id(&id).part_number(1).body(part).send().await.unwrap();
    id
}

async fn open_uploads(server: &Server, bucket: &str, prefix: &str) -> Vec<String> {
    let module = server.module(bucket);
    let out = module.sdk_client().list_multipart_uploads().bucket(bucket).prefix(prefix).send().await.unwrap();
    out.uploads().iter().filter_map(|u| u.upload_id()).map(str::to_owned).collect()
}

/// moto answers every ListMultipartUploads with a fixed `Initiated` of
/// 2010 and ListParts with a root element the SDK refuses, so only a
/// faithful server (Swift's s3api) can show that a young upload is left
/// alone and what the parts weigh.
async fn stale_uploads_are_swept(server: Server, faithful: bool) {
    let bucket = format!("csal-stale-{}", ulid::Ulid::new().to_string().to_lowercase());
    server.ensure_bucket(&bucket).await;
    let mine = abandoned_upload(&server, &bucket, "site-a/cam1/seg.ts").await;
    let other = abandoned_upload(&server, &bucket, "site-b/cam1/seg.ts").await;
    let instance = |hours: u64| {
        let mut config = server.config(&bucket);
        config["prefix"] = serde_json::json!("site-a");
        config["stale_upload_hours"] = serde_json::json!(hours);
        StorageRouter::new(&[InstanceDefinition::new("vault", "s3", config)], LayerConfig::default())
    };

    if faithful {
        // Younger than the default age: left alone, health stays ok.
        let patient = instance(24);
        let module = patient.module("vault").unwrap();
        assert_eq!(module.stale_uploads(true).await.unwrap(), StaleUploads::default());
        let report = module.health_check().await;
        assert_eq!(report.status, csal_core::HealthStatus::Ok, "{report:?}");
        assert_eq!(report.details[StaleUploads::COUNT], 0);
        assert_eq!(open_uploads(&server, &bucket, "site-a/").await, vec![mine.clone()]);
    }

    // Age 0: it is stale; health reports count and bytes, the sweep aborts it.
    let eager = instance(0);
    let module = eager.module("vault").unwrap();
    let report = module.health_check().await;
    assert_eq!(report.status, csal_core::HealthStatus::Ok, "leftovers do not impair the target: {report:?}");
    let bytes = if faithful { 5 * 1024 * 1024 } else { 0 };
    assert_eq!(report.details[StaleUploads::COUNT], 1);
    assert_eq!(report.details[StaleUploads::BYTES], bytes);
    let swept = module.stale_uploads(true).await.unwrap();
    assert_eq!(swept, StaleUploads { count: 1, bytes, removed: 1 });
    assert!(open_uploads(&server, &bucket, "site-a/").await.is_empty());
    // Another instance's prefix is not ours to clean.
    assert_eq!(open_uploads(&server, &bucket, "site-b/").await, vec![other]);
    assert_eq!(module.health_check().await.details[StaleUploads::COUNT], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_uploads_under_the_prefix_are_reported_and_aborted_on_moto() {
    let Some(server) = Server::moto() else { return };
    stale_uploads_are_swept(server, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_uploads_older_than_the_age_are_stale_on_swift_s3api() {
    let Some(server) = Server::swift() else { return };
    stale_uploads_are_swept(server, true).await;
}
