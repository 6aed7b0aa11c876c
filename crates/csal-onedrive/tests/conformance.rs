//! The shared conformance suite on the `onedrive` provider, against the
//! in-process fake Microsoft Graph of `csal-fakes` (started by the test).

csal_core::link_providers!(csal_onedrive);

use csal_fakes::onedrive::{CLIENT_ID, CLIENT_SECRET, FakeOneDrive, REFRESH_TOKEN};

fn config(fake: &FakeOneDrive, refresh_token: &str) -> serde_json::Value {
    serde_json::json!({
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
        "root_path": "/csal",
        "chunk_size_kib": 640,
        "graph_url": fake.graph_url(),
        "token_url": fake.token_url(),
        "timeout_secs": 30,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn onedrive_passes_conformance_on_the_fake() {
    if !csal_conformance::is_selected("onedrive") {
        return; // `cargo xtask conformance --provider` chose others
    }
    let fake = FakeOneDrive::start().await;
    let target = csal_conformance::Target::new("onedrive@fake", "onedrive", config(&fake, REFRESH_TOKEN))
        // Well above one 640 KiB fragment: an upload session of many fragments.
        .large_size(5 * 1024 * 1024 + 12_345)
        .bad_credentials(config(&fake, "not-a-refresh-token-we-issued"));
    csal_conformance::run(target).await.assert_passed();
    assert!(fake.fragments() >= 8, "the large object did not go through an upload session");
    assert_eq!(fake.open_sessions(), 0, "an upload session was left open");
}

/// A private CA (`ca_file`): the fake behind csal-testkit's TLS proxy
/// (`https://127.0.0.1:PORT`, certificate signed by a CA made by the test),
/// token endpoint included; trusted only with `ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onedrive_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let fake = FakeOneDrive::start().await;
    let proxy = csal_testkit::tls::TlsProxy::in_front_of(&fake.graph_url()).await;
    let (with_ca, without_ca) = proxy.configs(&config(&fake, REFRESH_TOKEN), &["graph_url", "token_url"]);
    csal_conformance::tls::private_ca("onedrive", with_ca, without_ca).await;
}
