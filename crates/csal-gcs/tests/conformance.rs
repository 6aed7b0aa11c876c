//! The shared conformance suite on fake-gcs-server (started by
//! `cargo xtask`, which exports `CSAL_TEST_GCS_ENDPOINT`).
//!
//! fake-gcs-server checks no credentials, so the target runs anonymously
//! (`anonymous: true`) with a throwaway service-account key configured only
//! to sign URLs. `bad_credentials` uses a key whose private key is not an
//! RSA key: the token request cannot even be signed, which must surface as
//! an `Auth` error (that a real token endpoint refusing a key is also `Auth`
//! is covered by the error table's unit tests and the live test).

csal_core::link_providers!(csal_gcs);

use aws_lc_rs::encoding::AsDer;
use base64::Engine as _;

const LABEL: &str = "gcs@fake-gcs-server";

/// A service-account key JSON with a fresh throwaway RSA key.
fn throwaway_key_json() -> String {
    let pair = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pair.as_der().unwrap().as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    key_json(&format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n")))
}

fn key_json(private_key: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "csal-test",
        "client_email": "csal-test@csal-test.iam.gserviceaccount.com",
        "private_key": private_key,
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

/// Create the bucket on the emulator (409 = it is already there).
async fn ensure_bucket(endpoint: &str, bucket: &str) {
    let response = reqwest::Client::new()
        .post(format!("{endpoint}/storage/v1/b?project=csal-test"))
        .header("content-type", "application/json")
        .body(serde_json::json!({ "name": bucket }).to_string())
        .send()
        .await
        .expect("fake-gcs-server answers");
    assert!(
        response.status().is_success() || response.status().as_u16() == 409,
        "creating bucket {bucket}: {}",
        response.status()
    );
}

fn endpoint() -> Option<String> {
    csal_conformance::require_env("CSAL_TEST_GCS_ENDPOINT", LABEL, "gcs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcs_passes_conformance_on_fake_gcs_server() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = "csal-conformance";
    ensure_bucket(&endpoint, bucket).await;
    let config = serde_json::json!({
        "bucket": bucket,
        "endpoint": endpoint,
        "anonymous": true,
        "credentials_json": throwaway_key_json(),
        // Small chunks: the large object (12 MiB) goes up in 49 resumable chunks.
        "chunk_size_kib": 256,
    });
    let bad = serde_json::json!({
        "bucket": bucket,
        "endpoint": endpoint,
        "credentials_json": key_json("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"),
    });
    let target = csal_conformance::Target::new(LABEL, "gcs", config).bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

/// A V4 URL built by presign_read is served by the emulator (path style,
/// which fake-gcs-server serves when `-public-host` is its own address;
/// it does not check signatures, so this checks the URL's shape and path
/// encoding, not the signature: the unit tests verify that with the key).
#[tokio::test(flavor = "multi_thread")]
async fn signed_url_reads_the_object_back_on_fake_gcs_server() {
    use csal_core::{ByteStream, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
    let Some(endpoint) = endpoint() else { return };
    let bucket = "csal-presign";
    ensure_bucket(&endpoint, bucket).await;
    let config = serde_json::json!({
        "bucket": bucket, "endpoint": endpoint, "anonymous": true, "credentials_json": throwaway_key_json(),
    });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("g", "gcs", config)]);
    let data = bytes::Bytes::from_static(b"signed url body");
    let receipt =
        router.write("g", ByteStream::from_bytes(data.clone()), WriteMeta::new("cam 5/seg+1.mp4")).await.unwrap();
    let module = router.module("g").unwrap();
    let url = module.presign_read(&receipt.object_id, std::time::Duration::from_secs(300)).await.unwrap();
    assert!(url.contains("X-Goog-Signature="), "{url}");
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    assert_eq!(response.bytes().await.unwrap(), data);
    module.delete(&receipt.object_id).await.unwrap();
}

/// A private CA (`ca_file`): fake-gcs-server behind csal-testkit's TLS
/// proxy, whose certificate a CA made by the test signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let Some(endpoint) = endpoint() else { return };
    let bucket = "csal-conformance";
    ensure_bucket(&endpoint, bucket).await;
    let proxy = csal_testkit::tls::TlsProxy::in_front_of(&endpoint).await;
    let without_ca = serde_json::json!({ "bucket": bucket, "endpoint": proxy.rewrite(&endpoint), "anonymous": true });
    let mut with_ca = without_ca.clone();
    with_ca["ca_file"] = proxy.ca_file().into();
    csal_conformance::tls::private_ca("gcs", with_ca, without_ca).await;
}
