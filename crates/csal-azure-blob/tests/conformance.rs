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

/// A SAS URL from presign_read is accepted by Azurite, which checks the
/// signature with the account key; a tampered one is refused.
#[tokio::test(flavor = "multi_thread")]
async fn sas_url_is_accepted_by_azurite_and_tampering_is_refused() {
    use csal_core::{ByteStream, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
    let Some(az) = azurite("azure_blob@azurite (sas url)") else { return };
    let container = "csal-presign";
    ensure_container(&az, container).await;
    let router =
        StorageRouter::from_definitions(&[InstanceDefinition::new("a", "azure_blob", config(&az, container, &az.key))]);
    let data = bytes::Bytes::from_static(b"sas url body");
    let receipt =
        router.write("a", ByteStream::from_bytes(data.clone()), WriteMeta::new("cam 5/seg+1.mp4")).await.unwrap();
    let module = router.module("a").unwrap();
    let url = module.presign_read(&receipt.object_id, std::time::Duration::from_secs(300)).await.unwrap();
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {url}");
    assert_eq!(response.bytes().await.unwrap(), data);
    let tampered = url.replace("sp=r", "sp=rw");
    assert_eq!(reqwest::get(&tampered).await.unwrap().status().as_u16(), 403);
    module.delete(&receipt.object_id).await.unwrap();
}

/// Auth by SAS token: a container SAS made with the account key (service
/// SAS, `sr=c`, permissions racwdl) drives the whole suite's basic path.
#[tokio::test(flavor = "multi_thread")]
async fn sas_token_auth_round_trips_on_azurite() {
    use csal_core::{ByteStream, ErrorKind, InstanceDefinition, ListRequest, StorageModule, StorageRouter, WriteMeta};
    use hmac::{Hmac, Mac};
    let Some(az) = azurite("azure_blob@azurite (sas token)") else { return };
    let container = "csal-sas-token";
    ensure_container(&az, container).await;
    let now = std::time::SystemTime::now();
    let st = humantime::format_rfc3339_seconds(now - std::time::Duration::from_secs(300)).to_string();
    let se = humantime::format_rfc3339_seconds(now + std::time::Duration::from_secs(3600)).to_string();
    let to_sign = [
        "racwdl",
        &st,
        &se,
        &format!("/blob/{}/{container}", az.account),
        "",
        "",
        "https,http",
        "2023-11-03",
        "c",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    .join("\n");
    let key = base64::engine::general_purpose::STANDARD.decode(&az.key).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let enc = |s: &str| s.replace(':', "%3A").replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let token =
        format!("sv=2023-11-03&spr=https%2Chttp&st={}&se={}&sr=c&sp=racwdl&sig={}", enc(&st), enc(&se), enc(&sig));
    let cfg = serde_json::json!({
        "account": az.account, "container": container, "endpoint": az.endpoint,
        "sas_token": token, "block_size_kib": 64,
    });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("s", "azure_blob", cfg)]);
    let module = router.module("s").unwrap();
    assert!(!module.capabilities().presign, "no account key, no SAS URLs");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let receipt = router.write("s", ByteStream::from_bytes(data.clone()), WriteMeta::new("sas/obj.bin")).await.unwrap();
    let back = module.read(&receipt.object_id, None).await.unwrap().collect_limited(1 << 20).await.unwrap();
    assert_eq!(&back[..], &data[..]);
    let page = module.list(&ListRequest::new("sas")).await.unwrap();
    assert!(page.objects.iter().any(|o| o.object_id == receipt.object_id));
    module.delete(&receipt.object_id).await.unwrap();
    let gone = module.stat(&receipt.object_id).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound);
}

/// A private CA (`ca_file`): Azurite behind csal-testkit's TLS proxy, whose
/// certificate a CA made by the test signed; trusted only with `ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_blob_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let Some(az) = azurite("azure_blob@azurite") else { return };
    let container = "csal-conformance";
    ensure_container(&az, container).await;
    let proxy = csal_testkit::tls::TlsProxy::in_front_of(&az.endpoint).await;
    let mut without_ca = config(&az, container, &az.key);
    without_ca["endpoint"] = proxy.rewrite(&az.endpoint).into();
    let mut with_ca = without_ca.clone();
    with_ca["ca_file"] = proxy.ca_file().into();
    csal_conformance::tls::private_ca("azure_blob", with_ca, without_ca).await;
}
