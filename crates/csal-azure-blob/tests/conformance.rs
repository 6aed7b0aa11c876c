//! The shared conformance suite on Azurite (started by `cargo xtask`, which
//! exports `CSAL_TEST_AZURE_ENDPOINT`, `CSAL_TEST_AZURE_ACCOUNT` and
//! `CSAL_TEST_AZURE_KEY`). Azurite checks Shared Key signatures, so the
//! bad-credentials target (a wrong key) is refused by the server itself.

csal_core::link_providers!(csal_azure_blob);

use base64::Engine as _;

struct Azurite {
    endpoint: String,
    account: String,
    key: String,
}

fn azurite(label: &str) -> Option<Azurite> {
    let endpoint = csal_conformance::require_env("CSAL_TEST_AZURE_ENDPOINT", label, "azure_blob")?;
    let account = csal_conformance::require_env("CSAL_TEST_AZURE_ACCOUNT", label, "azure_blob")?;
    let key = csal_conformance::require_env("CSAL_TEST_AZURE_KEY", label, "azure_blob")?;
    Some(Azurite { endpoint, account, key })
}

/// Create the container (409 ContainerAlreadyExists is fine) through the
/// provider's own signing, via a connection string.
async fn ensure_container(az: &Azurite, container: &str) {
    // A tiny Shared Key client of its own would duplicate the crate; the
    // container is created with a signed request built here instead.
    use hmac::{Hmac, Mac};
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let url = format!("{}/{container}?restype=container", az.endpoint);
    let path = reqwest::Url::parse(&url).unwrap().path().to_owned();
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:2023-11-03\n/{}{path}\nrestype:container",
        az.account
    );
    let key = base64::engine::general_purpose::STANDARD.decode(&az.key).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let response = reqwest::Client::new()
        .put(url)
        .header("x-ms-date", date)
        .header("x-ms-version", "2023-11-03")
        .header("content-length", "0")
        .header("authorization", format!("SharedKey {}:{sig}", az.account))
        .send()
        .await
        .expect("Azurite answers");
    assert!(
        response.status().is_success() || response.status().as_u16() == 409,
        "creating container {container}: {}",
        response.status()
    );
}

fn config(az: &Azurite, container: &str, key: &str) -> serde_json::Value {
    serde_json::json!({
        "account": az.account,
        "container": container,
        "endpoint": az.endpoint,
        "account_key": key,
        // Small blocks: the large object (12 MiB) goes up as 49 staged blocks.
        "block_size_kib": 256,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_blob_passes_conformance_on_azurite() {
    let label = "azure_blob@azurite";
    let Some(az) = azurite(label) else { return };
    let container = "csal-conformance";
    ensure_container(&az, container).await;
    let wrong_key = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let target = csal_conformance::Target::new(label, "azure_blob", config(&az, container, &az.key))
        .bad_credentials(config(&az, container, &wrong_key));
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_blob_with_a_connection_string_passes_conformance_on_azurite() {
    let label = "azure_blob@azurite (connection string)";
    let Some(az) = azurite(label) else { return };
    let container = "csal-conformance-cs";
    ensure_container(&az, container).await;
    let cs = |key: &str| {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={};AccountKey={key};BlobEndpoint={};",
            az.account, az.endpoint
        )
    };
    let wrong_key = base64::engine::general_purpose::STANDARD.encode([9u8; 64]);
    let cfg = |key: &str| serde_json::json!({ "container": container, "connection_string": cs(key) });
    let target = csal_conformance::Target::new(label, "azure_blob", cfg(&az.key)).bad_credentials(cfg(&wrong_key));
    csal_conformance::run(target).await.assert_passed();
}
