//! The conformance suite against the real Google Drive, only when
//! credentials are given:
//!
//! CSAL_LIVE_GDRIVE_CLIENT_ID, CSAL_LIVE_GDRIVE_CLIENT_SECRET,
//! CSAL_LIVE_GDRIVE_REFRESH_TOKEN, optional CSAL_LIVE_GDRIVE_FOLDER_ID
//! (default `root`; everything the run writes is deleted, the folders it
//! created stay) and CSAL_LIVE_GDRIVE_SHARED_DRIVE=1.

csal_core::link_providers!(csal_gdrive);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gdrive_passes_conformance_live() {
    let (Some(id), Some(secret), Some(refresh)) = (
        var("CSAL_LIVE_GDRIVE_CLIENT_ID"),
        var("CSAL_LIVE_GDRIVE_CLIENT_SECRET"),
        var("CSAL_LIVE_GDRIVE_REFRESH_TOKEN"),
    ) else {
        println!(
            "SKIP gdrive live test: set CSAL_LIVE_GDRIVE_CLIENT_ID, CSAL_LIVE_GDRIVE_CLIENT_SECRET and \
             CSAL_LIVE_GDRIVE_REFRESH_TOKEN (optional _FOLDER_ID, _SHARED_DRIVE) to run it"
        );
        return;
    };
    let config = |refresh: &str| {
        serde_json::json!({
            "client_id": id, "client_secret": secret, "refresh_token": refresh,
            "root_folder_id": var("CSAL_LIVE_GDRIVE_FOLDER_ID").unwrap_or_else(|| "root".to_owned()),
            "shared_drive": var("CSAL_LIVE_GDRIVE_SHARED_DRIVE").is_some(),
        })
    };
    let target = csal_conformance::Target::new("gdrive@live", "gdrive", config(&refresh))
        .large_size(12 * 1024 * 1024 + 4321)
        .list_objects(120)
        .bad_credentials(config("not-a-valid-refresh-token"));
    csal_conformance::run(target).await.assert_passed();
}
