//! The conformance suite against real Microsoft Graph, only when
//! credentials are given:
//!
//! CSAL_LIVE_ONEDRIVE_CLIENT_ID, CSAL_LIVE_ONEDRIVE_REFRESH_TOKEN, optional
//! CSAL_LIVE_ONEDRIVE_CLIENT_SECRET, CSAL_LIVE_ONEDRIVE_TENANT (default
//! common), CSAL_LIVE_ONEDRIVE_DRIVE_ID, CSAL_LIVE_ONEDRIVE_ROOT (default
//! `/csal-live-test`; everything the run writes is deleted).

csal_core::link_providers!(csal_onedrive);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn onedrive_passes_conformance_live() {
    let (Some(client_id), Some(refresh)) =
        (var("CSAL_LIVE_ONEDRIVE_CLIENT_ID"), var("CSAL_LIVE_ONEDRIVE_REFRESH_TOKEN"))
    else {
        println!(
            "SKIP onedrive live test: set CSAL_LIVE_ONEDRIVE_CLIENT_ID and CSAL_LIVE_ONEDRIVE_REFRESH_TOKEN \
             (optional _CLIENT_SECRET, _TENANT, _DRIVE_ID, _ROOT) to run it"
        );
        return;
    };
    let config = |refresh: &str| {
        let mut c = serde_json::json!({
            "client_id": client_id,
            "refresh_token": refresh,
            "root_path": var("CSAL_LIVE_ONEDRIVE_ROOT").unwrap_or_else(|| "/csal-live-test".to_owned()),
        });
        for (key, env) in [
            ("client_secret", "CSAL_LIVE_ONEDRIVE_CLIENT_SECRET"),
            ("tenant", "CSAL_LIVE_ONEDRIVE_TENANT"),
            ("drive_id", "CSAL_LIVE_ONEDRIVE_DRIVE_ID"),
        ] {
            if let Some(v) = var(env) {
                c[key] = serde_json::Value::String(v);
            }
        }
        c
    };
    let target = csal_conformance::Target::new("onedrive@live", "onedrive", config(&refresh))
        .large_size(12 * 1024 * 1024 + 4321)
        .list_objects(120)
        .bad_credentials(config("not-a-valid-refresh-token"));
    csal_conformance::run(target).await.assert_passed();
}
