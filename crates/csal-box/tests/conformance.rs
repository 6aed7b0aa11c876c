//! The shared conformance suite on the `box` provider, against the
//! in-process fake Box of `csal-fakes` (started by the test itself).

csal_core::link_providers!(csal_box);

use csal_fakes::boxapi::{CLIENT_ID, CLIENT_SECRET, ENTERPRISE_ID, FakeBox, REFRESH_TOKEN};

/// Sessions from 1 MiB with 256 KiB parts on the fake (Box: 20 MB, 8 MiB+).
const THRESHOLD_KIB: u64 = 1024;
const PART: u64 = 256 * 1024;

fn config(fake: &FakeBox, refresh_token: &str) -> serde_json::Value {
    serde_json::json!({
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
        "root_folder_id": "0",
        "session_threshold_kib": THRESHOLD_KIB,
        "api_url": fake.api_url(),
        "upload_url": fake.upload_url(),
        "token_url": fake.token_url(),
        "timeout_secs": 30,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn box_passes_conformance_on_the_fake() {
    if !csal_conformance::is_selected("box") {
        return; // `cargo xtask conformance --provider` chose others
    }
    let fake = FakeBox::start().await;
    fake.set_session_limits(THRESHOLD_KIB * 1024, PART);
    let target = csal_conformance::Target::new("box@fake", "box", config(&fake, REFRESH_TOKEN))
        // Well above the 1 MiB threshold: an upload session of 20+ parts.
        .large_size(5 * 1024 * 1024 + 12_345)
        .bad_credentials(config(&fake, "not-a-refresh-token-we-issued"));
    csal_conformance::run(target).await.assert_passed();
    assert!(fake.parts() >= 20, "the large object did not go through an upload session");
    assert!(fake.commits() >= 1, "no upload session was committed");
    assert!(fake.wait_for_no_sessions(std::time::Duration::from_secs(10)).await, "an upload session was left open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn box_client_credentials_passes_conformance_on_the_fake() {
    if !csal_conformance::is_selected("box") {
        return;
    }
    let fake = FakeBox::start().await;
    fake.set_session_limits(THRESHOLD_KIB * 1024, PART);
    let ccg = |id: &str| {
        serde_json::json!({
            "auth_method": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "box_subject_type": "enterprise",
            "box_subject_id": id,
            "session_threshold_kib": THRESHOLD_KIB,
            "api_url": fake.api_url(),
            "upload_url": fake.upload_url(),
            "token_url": fake.token_url(),
        })
    };
    let target = csal_conformance::Target::new("box-ccg@fake", "box", ccg(ENTERPRISE_ID))
        .large_size(3 * 1024 * 1024 + 7)
        .bad_credentials(ccg("999999"));
    csal_conformance::run(target).await.assert_passed();
    assert!(fake.wait_for_no_sessions(std::time::Duration::from_secs(10)).await, "an upload session was left open");
}

/// A private CA (`ca_file`): the fake behind csal-testkit's TLS proxy
/// (`https://127.0.0.1:PORT`, certificate signed by a CA made by the test),
/// token endpoint included; trusted only with `ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn box_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let fake = FakeBox::start().await;
    let proxy = csal_testkit::tls::TlsProxy::in_front_of(&fake.api_url()).await;
    let (with_ca, without_ca) = proxy.configs(&config(&fake, REFRESH_TOKEN), &["api_url", "upload_url", "token_url"]);
    csal_conformance::tls::private_ca("box", with_ca, without_ca).await;
}
