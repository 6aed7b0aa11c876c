//! Live pCloud test, only with CSAL_LIVE_PCLOUD_* set:
//! - CSAL_LIVE_PCLOUD_TOKEN (OAuth access token), or
//!   CSAL_LIVE_PCLOUD_USERNAME + CSAL_LIVE_PCLOUD_PASSWORD;
//! - CSAL_LIVE_PCLOUD_REGION (`us` or `eu`, default `us`);
//! - CSAL_LIVE_PCLOUD_ROOT (default `/csal-live-test`).
//!
//! Without them it prints SKIP and passes.

csal_core::link_providers!(csal_pcloud);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pcloud_live_passes_conformance() {
    let region = var("CSAL_LIVE_PCLOUD_REGION").unwrap_or_else(|| "us".into());
    let root = var("CSAL_LIVE_PCLOUD_ROOT").unwrap_or_else(|| "/csal-live-test".into());
    let mut config = serde_json::json!({ "region": region, "root": root });
    let mut bad = config.clone();
    if let Some(token) = var("CSAL_LIVE_PCLOUD_TOKEN") {
        config["access_token"] = token.into();
        bad["access_token"] = "csal-invalid-token-000".into();
    } else if let (Some(u), Some(p)) = (var("CSAL_LIVE_PCLOUD_USERNAME"), var("CSAL_LIVE_PCLOUD_PASSWORD")) {
        config["username"] = u.clone().into();
        config["password"] = p.into();
        bad["username"] = u.into();
        bad["password"] = "csal-wrong-password-000".into();
    } else {
        eprintln!("SKIP pcloud live: set CSAL_LIVE_PCLOUD_TOKEN or CSAL_LIVE_PCLOUD_USERNAME/PASSWORD");
        return;
    }
    let target = csal_conformance::Target::new("pcloud@live", "pcloud", config).list_objects(120).bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}
