//! The shared conformance suite on the `gdrive` provider, against the
//! in-process fake Drive v3 API of `csal-fakes` (started by the test).

csal_core::link_providers!(csal_gdrive);

use csal_fakes::gdrive::{CLIENT_ID, CLIENT_SECRET, FakeGoogleDrive, REFRESH_TOKEN};

fn config(fake: &FakeGoogleDrive, refresh_token: &str) -> serde_json::Value {
    serde_json::json!({
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
        "chunk_size_kib": 512,
        "api_url": fake.api_url(),
        "token_url": fake.token_url(),
        "timeout_secs": 30,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gdrive_passes_conformance_on_the_fake() {
    if !csal_conformance::is_selected("gdrive") {
        return; // `cargo xtask conformance --provider` chose others
    }
    let fake = FakeGoogleDrive::start().await;
    let target = csal_conformance::Target::new("gdrive@fake", "gdrive", config(&fake, REFRESH_TOKEN))
        // Many 512 KiB resumable chunks.
        .large_size(5 * 1024 * 1024 + 12_345)
        .bad_credentials(config(&fake, "not-a-refresh-token-we-issued"));
    csal_conformance::run(target).await.assert_passed();
    assert!(fake.chunks() >= 10, "the large object did not go through a resumable upload");
    assert_eq!(fake.open_uploads(), 0, "a resumable upload was left open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gdrive_with_a_service_account_passes_conformance_on_the_fake() {
    if !csal_conformance::is_selected("gdrive") {
        return; // `cargo xtask conformance --provider` chose others
    }
    let fake = FakeGoogleDrive::start().await;
    let sa = |json: String| {
        serde_json::json!({
            "service_account_json": json,
            "chunk_size_kib": 512,
            "api_url": fake.api_url(),
            "timeout_secs": 30,
        })
    };
    let good = fake.service_account_json();
    let wrong_account =
        good.replace(csal_fakes::gdrive::SERVICE_ACCOUNT_EMAIL, "someone-else@fake-project.iam.gserviceaccount.com");
    let target = csal_conformance::Target::new("gdrive-sa@fake", "gdrive", sa(good))
        .large_size(3 * 1024 * 1024 + 777)
        .list_objects(200)
        .bad_credentials(sa(wrong_account));
    csal_conformance::run(target).await.assert_passed();
    assert!(fake.token_requests() >= 1, "no token came from the service-account flow");
}

/// A private CA (`ca_file`): the fake behind csal-testkit's TLS proxy
/// (`https://127.0.0.1:PORT`, certificate signed by a CA made by the test),
/// token endpoint included; trusted only with `ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdrive_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let fake = FakeGoogleDrive::start().await;
    let proxy = csal_testkit::tls::TlsProxy::in_front_of(&fake.api_url()).await;
    let (with_ca, without_ca) = proxy.configs(&config(&fake, REFRESH_TOKEN), &["api_url", "token_url"]);
    csal_conformance::tls::private_ca("gdrive", with_ca, without_ca).await;
}
