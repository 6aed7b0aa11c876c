//! The shared conformance suite on three S3 servers (moto, s3s-fs, Swift's
//! s3api) and every preset pointed at moto, plus interop checks.
//!
//! moto checks no signatures, so the moto rows borrow s3s-fs (which does)
//! for `bad_credentials_are_auth_errors`: the wrong-secret config of the
//! same provider type is sent there. Without s3s-fs running, that one test
//! fails on the moto rows (as it should: it was not tested).

csal_core::link_providers!(csal_s3);

mod common;

use std::time::Duration;

use common::{BUCKET, Server, http_get};
use csal_conformance::Target;
use csal_core::{ByteStream, StorageModule, WriteMeta};
use futures::StreamExt;

/// 5 MiB parts; 12 MiB + a bit makes three parts (the default large size).
const LARGE: usize = 12 * 1024 * 1024 + 12_345;

fn bad_credentials_for_moto(provider_config: &serde_json::Value) -> serde_json::Value {
    let mut bad = provider_config.clone();
    if let Some(s3sfs) = Server::s3sfs_if_running() {
        bad["endpoint"] = serde_json::json!(s3sfs.endpoint);
        bad["access_key"] = serde_json::json!(s3sfs.access_key);
    }
    bad["secret_key"] = serde_json::json!("wrong-secret-key-for-tests");
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_on_moto_passes_conformance() {
    let Some(server) = Server::moto() else { return };
    server.ensure_bucket(BUCKET).await;
    let config = server.config(BUCKET);
    let target = Target::new("s3@moto", "s3", config.clone())
        .large_size(LARGE)
        .bad_credentials(bad_credentials_for_moto(&config));
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_on_s3sfs_passes_conformance() {
    let Some(server) = Server::s3sfs("s3@s3s-fs") else { return };
    server.ensure_bucket(BUCKET).await;
    let target = Target::new("s3@s3s-fs", "s3", server.config(BUCKET))
        .large_size(LARGE)
        .bad_credentials(server.bad_config(BUCKET));
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_on_swift_s3api_passes_conformance() {
    let Some(server) = Server::swift() else { return };
    server.ensure_bucket(BUCKET).await;
    let target = Target::new("s3@swift-s3api", "s3", server.config(BUCKET))
        .large_size(LARGE)
        .bad_credentials(server.bad_config(BUCKET));
    csal_conformance::run(target).await.assert_passed();
}

/// Each preset's own config, with its endpoint overridden to moto.
fn preset_config(provider_type: &str, server: &Server) -> serde_json::Value {
    let mut c = serde_json::json!({
        "bucket": BUCKET,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "part_size_mb": 5,
        "endpoint": server.endpoint,
    });
    let extra = match provider_type {
        "r2" => serde_json::json!({"account_id": "0123456789abcdef0123456789abcdef"}),
        "b2" => serde_json::json!({"region": "us-west-004"}),
        "wasabi" => serde_json::json!({"region": "eu-central-1"}),
        "do_spaces" => serde_json::json!({"region": "ams3"}),
        "linode" => serde_json::json!({"region": "eu-central-1"}),
        "ibm_cos" => serde_json::json!({"region": "eu-de"}),
        "oracle" => serde_json::json!({"namespace": "csaltest", "region": "eu-frankfurt-1"}),
        "ovh" => serde_json::json!({"region": "gra"}),
        "scaleway" => serde_json::json!({"region": "fr-par"}),
        "s3_compatible" => serde_json::json!({}),
        other => panic!("no test config for preset {other}"),
    };
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

async fn preset_on_moto(provider_type: &str) {
    let Some(server) = Server::moto() else { return };
    server.ensure_bucket(BUCKET).await;
    let config = preset_config(provider_type, &server);
    let target = Target::new(format!("{provider_type}@moto"), provider_type, config.clone())
        .large_size(LARGE)
        .list_objects(250)
        .bad_credentials(bad_credentials_for_moto(&config));
    csal_conformance::run(target).await.assert_passed();
}

macro_rules! preset_tests {
    ($($name:ident => $ty:literal),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                preset_on_moto($ty).await;
            }
        )+
    };
}

preset_tests!(
    r2_on_moto_passes_conformance => "r2",
    b2_on_moto_passes_conformance => "b2",
    wasabi_on_moto_passes_conformance => "wasabi",
    do_spaces_on_moto_passes_conformance => "do_spaces",
    linode_on_moto_passes_conformance => "linode",
    ibm_cos_on_moto_passes_conformance => "ibm_cos",
    oracle_on_moto_passes_conformance => "oracle",
    ovh_on_moto_passes_conformance => "ovh",
    scaleway_on_moto_passes_conformance => "scaleway",
    s3_compatible_on_moto_passes_conformance => "s3_compatible",
);

/// What csal-s3 writes, a plain HTTP client reads back through a presigned
/// URL, byte for byte and with its content type (and s3s-fs checks the
/// presigned signature).
async fn presigned_url_serves_identical_bytes(server: Server) {
    server.ensure_bucket(BUCKET).await;
    let module = server.module(BUCKET);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let receipt = module
        .write(ByteStream::from_bytes(data.clone()), WriteMeta::new("interop/clip.mp4").with_content_type("video/mp4"))
        .await
        .unwrap();
    let url = module.presign_read(&receipt.object_id, Duration::from_secs(300)).await.unwrap();
    let (status, headers, body) = tokio::task::spawn_blocking(move || http_get(&url)).await.unwrap();
    assert_eq!(status, 200, "presigned GET");
    assert!(body == data, "presigned GET returned {} bytes that differ", body.len());
    let ct = headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str());
    assert_eq!(ct, Some("video/mp4"));
    // And through the raw SDK (no csal code on the read path).
    let raw = module.sdk_client().get_object().bucket(BUCKET).key(&receipt.object_id).send().await.unwrap();
    assert_eq!(raw.content_type(), Some("video/mp4"));
    assert!(raw.body.collect().await.unwrap().into_bytes() == data);
    module.delete(&receipt.object_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_url_serves_identical_bytes_on_s3sfs() {
    let Some(server) = Server::s3sfs("s3-interop@s3s-fs") else { return };
    presigned_url_serves_identical_bytes(server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_url_serves_identical_bytes_on_moto() {
    let Some(server) = Server::moto() else { return };
    presigned_url_serves_identical_bytes(server).await;
}

/// A second write can never replace the first: with If-None-Match the
/// server refuses a PUT to an existing key (checked on the raw SDK, since
/// csal ids are unique and never collide by themselves).
#[tokio::test(flavor = "multi_thread")]
async fn server_refuses_overwrite_when_conditional_create_is_on() {
    let Some(server) = Server::moto() else { return };
    server.ensure_bucket(BUCKET).await;
    let module = server.module(BUCKET);
    let receipt = module.write(ByteStream::from_bytes(&b"first"[..]), WriteMeta::new("cond/a.bin")).await.unwrap();
    let second = module
        .sdk_client()
        .put_object()
        .bucket(BUCKET)
        .key(&receipt.object_id)
        .if_none_match("*")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"second"))
        .send()
        .await;
    let err = second.expect_err("PUT with If-None-Match: * over an existing key succeeded");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(412));
    let back = module.read(&receipt.object_id, None).await.unwrap().collect_limited(100).await.unwrap();
    assert_eq!(&back[..], b"first");
    assert!(module.capabilities().conditional_create);
    module.delete(&receipt.object_id).await.unwrap();
}

/// A multipart upload whose body fails leaves no upload behind (on moto:
/// s3s-fs does not implement ListMultipartUploads).
#[tokio::test(flavor = "multi_thread")]
async fn failed_multipart_upload_is_aborted() {
    let Some(server) = Server::moto() else { return };
    server.ensure_bucket(BUCKET).await;
    let module = server.module(BUCKET);
    let dir = format!("abort-{}", ulid::Ulid::new().to_string().to_lowercase());
    // 11 MiB of good bytes (two parts go out), then the body fails.
    let good = bytes::Bytes::from(vec![7u8; 1024 * 1024]);
    let chunks = (0..11)
        .map(move |_| Ok(good.clone()))
        .chain(std::iter::once(Err(csal_core::StorageError::transient("source camera went away"))));
    let body = ByteStream::new(futures::stream::iter(chunks), None);
    let err = module.write(body, WriteMeta::new(format!("{dir}/broken.bin"))).await.unwrap_err();
    assert!(err.message().contains("camera"), "{err}");
    let uploads = module.sdk_client().list_multipart_uploads().bucket(BUCKET).prefix(&dir).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "multipart uploads left behind: {:?}", uploads.uploads().len());
    let objects = module.sdk_client().list_objects_v2().bucket(BUCKET).prefix(&dir).send().await.unwrap();
    assert!(objects.contents().is_empty(), "objects left behind");
}

/// A multipart upload whose write future is dropped (caller gave up, a
/// timeout fired) is aborted from a spawned task: its upload disappears.
#[tokio::test(flavor = "multi_thread")]
async fn dropped_multipart_upload_is_aborted() {
    let Some(server) = Server::moto() else { return };
    server.ensure_bucket(BUCKET).await;
    let module = std::sync::Arc::new(server.module(BUCKET));
    let dir = format!("dropped-{}", ulid::Ulid::new().to_string().to_lowercase());
    let stalled = std::sync::Arc::new(tokio::sync::Notify::new());
    // 11 MiB, then the body never yields again. The body is polled past
    // 10 MiB (two parts) only after CreateMultipartUpload returned.
    let good = bytes::Bytes::from(vec![9u8; 1024 * 1024]);
    let signal = stalled.clone();
    let body = futures::stream::iter((0..11).map(move |_| Ok(good.clone()))).chain(futures::stream::poll_fn(
        move |_| -> std::task::Poll<Option<csal_core::Result<bytes::Bytes>>> {
            signal.notify_one();
            std::task::Poll::Pending
        },
    ));
    let writer = module.clone();
    let meta = WriteMeta::new(format!("{dir}/dropped.bin"));
    let task = tokio::spawn(async move { writer.write(ByteStream::new(body, None), meta).await });
    stalled.notified().await;
    let sdk = module.sdk_client();
    let open =
        || async { sdk.list_multipart_uploads().bucket(BUCKET).prefix(&dir).send().await.unwrap().uploads().len() };
    assert_eq!(open().await, 1, "the upload should be open while its body stalls");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while open().await > 0 {
        assert!(std::time::Instant::now() < deadline, "dropped multipart upload was not aborted within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
