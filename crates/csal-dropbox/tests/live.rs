//! The conformance suite against the real Dropbox, only when credentials are
//! given (never in CI by default):
//!
//! CSAL_LIVE_DROPBOX_APP_KEY, CSAL_LIVE_DROPBOX_APP_SECRET,
//! CSAL_LIVE_DROPBOX_REFRESH_TOKEN, optional CSAL_LIVE_DROPBOX_ROOT
//! (default `/csal-live-test`; everything the run writes is deleted).

csal_core::link_providers!(csal_dropbox);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropbox_passes_conformance_live() {
    let (Some(key), Some(secret), Some(refresh)) =
        (var("CSAL_LIVE_DROPBOX_APP_KEY"), var("CSAL_LIVE_DROPBOX_APP_SECRET"), var("CSAL_LIVE_DROPBOX_REFRESH_TOKEN"))
    else {
        println!(
            "SKIP dropbox live test: set CSAL_LIVE_DROPBOX_APP_KEY, CSAL_LIVE_DROPBOX_APP_SECRET and \
             CSAL_LIVE_DROPBOX_REFRESH_TOKEN to run it"
        );
        return;
    };
    let root = var("CSAL_LIVE_DROPBOX_ROOT").unwrap_or_else(|| "/csal-live-test".to_owned());
    let config = |refresh: &str| serde_json::json!({ "app_key": key, "app_secret": secret, "refresh_token": refresh, "root_path": root });
    let target = csal_conformance::Target::new("dropbox@live", "dropbox", config(&refresh))
        .large_size(2 * 8 * 1024 * 1024 + 4321)
        // Dropbox limits write rates per namespace; a smaller listing keeps
        // the run clear of too_many_write_operations.
        .list_objects(120)
        .bad_credentials(config("not-a-valid-refresh-token"));
    csal_conformance::run(target).await.assert_passed();
}
