//! The conformance suite against real Google Cloud Storage, only when
//! credentials are given (prints SKIP otherwise):
//!
//! - `CSAL_LIVE_GCS_BUCKET`: an existing bucket the key may write to;
//! - `CSAL_LIVE_GCS_CREDENTIALS`: path of a service-account JSON key.
//!
//! Objects go under `csal-conformance/<run>/` and are deleted afterwards.
//! `bad_credentials` keeps the key's `client_email` but swaps in a fresh
//! RSA key Google has never seen, so the token endpoint itself refuses it.

csal_core::link_providers!(csal_gcs);

use aws_lc_rs::encoding::AsDer;
use base64::Engine as _;

fn live() -> Option<(String, String)> {
    let bucket = std::env::var("CSAL_LIVE_GCS_BUCKET").ok().filter(|v| !v.is_empty());
    let key_path = std::env::var("CSAL_LIVE_GCS_CREDENTIALS").ok().filter(|v| !v.is_empty());
    match (bucket, key_path) {
        (Some(b), Some(k)) => Some((b, k)),
        _ => {
            eprintln!(
                "SKIP gcs@live: set CSAL_LIVE_GCS_BUCKET and CSAL_LIVE_GCS_CREDENTIALS (service-account key path)"
            );
            None
        }
    }
}

fn fresh_private_key_pem() -> String {
    let pair = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pair.as_der().unwrap().as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcs_passes_conformance_on_real_gcs() {
    let Some((bucket, key_path)) = live() else { return };
    let key_text = std::fs::read_to_string(&key_path).expect("reading CSAL_LIVE_GCS_CREDENTIALS");
    let mut wrong: serde_json::Value = serde_json::from_str(&key_text).expect("key file is JSON");
    wrong["private_key"] = serde_json::Value::String(fresh_private_key_pem());
    let config = serde_json::json!({ "bucket": bucket, "credentials_json": key_text, "chunk_size_kib": 512 });
    let bad = serde_json::json!({ "bucket": bucket, "credentials_json": wrong.to_string() });
    let target = csal_conformance::Target::new("gcs@live", "gcs", config)
        .large_size(3 * 512 * 1024 + 12_345)
        .list_objects(120)
        .bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_url_reads_the_object_on_real_gcs() {
    use csal_core::{ByteStream, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
    let Some((bucket, key_path)) = live() else { return };
    let config = serde_json::json!({ "bucket": bucket, "credentials_path": key_path });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("g", "gcs", config)]);
    let data = bytes::Bytes::from_static(b"csal live signed url");
    let receipt = router
        .write("g", ByteStream::from_bytes(data.clone()), WriteMeta::new("csal-conformance/live/signed url+1.bin"))
        .await
        .unwrap();
    let module = router.module("g").unwrap();
    let url = module.presign_read(&receipt.object_id, std::time::Duration::from_secs(120)).await.unwrap();
    let response = reqwest::get(&url).await.unwrap();
    let status = response.status();
    let body = response.bytes().await.unwrap();
    module.delete(&receipt.object_id).await.unwrap();
    assert_eq!(status.as_u16(), 200, "GET signed URL");
    assert_eq!(body, data);
}
