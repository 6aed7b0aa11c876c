//! The shared conformance suite on the `dropbox` provider, against the
//! in-process fake Dropbox of `csal-fakes` (started by the test itself).

csal_core::link_providers!(csal_dropbox);

use csal_fakes::dropbox::{APP_KEY, APP_SECRET, FakeDropbox, REFRESH_TOKEN};

fn config(fake: &FakeDropbox, refresh_token: &str) -> serde_json::Value {
    serde_json::json!({
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "refresh_token": refresh_token,
        "root_path": "/csal",
        "chunk_size_mb": 4,
        "api_url": fake.base_url(),
        "content_url": fake.base_url(),
        "token_url": fake.token_url(),
        "timeout_secs": 30,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropbox_passes_conformance_on_the_fake() {
    if !csal_conformance::is_selected("dropbox") {
        return; // `cargo xtask conformance --provider` chose others
    }
    let fake = FakeDropbox::start().await;
    let target = csal_conformance::Target::new("dropbox@fake", "dropbox", config(&fake, REFRESH_TOKEN))
        // Three full 4 MiB session chunks plus a tail: start, append x2, finish.
        .large_size(3 * 4 * 1024 * 1024 + 12_345)
        .bad_credentials(config(&fake, "not-the-refresh-token-we-issued"));
    csal_conformance::run(target).await.assert_passed();
    assert!(fake.appends() >= 2, "the large object did not go through an upload session");
    assert_eq!(fake.open_sessions(), 0, "an upload session was left open");
}

/// A private CA (`ca_file`): the fake behind csal-testkit's TLS proxy
/// (`https://127.0.0.1:PORT`, certificate signed by a CA made by the test),
/// token endpoint included; trusted only with `ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropbox_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let fake = FakeDropbox::start().await;
    let proxy = csal_testkit::tls::TlsProxy::in_front_of(&fake.base_url()).await;
    let (with_ca, without_ca) = proxy.configs(&config(&fake, REFRESH_TOKEN), &["api_url", "content_url", "token_url"]);
    csal_conformance::tls::private_ca("dropbox", with_ca, without_ca).await;
}
