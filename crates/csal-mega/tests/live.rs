//! Live MEGA test, only with CSAL_LIVE_MEGA_EMAIL and CSAL_LIVE_MEGA_PASSWORD
//! set (CSAL_LIVE_MEGA_ROOT optional, default `csal-live-test`). Without them
//! it prints SKIP and passes. Real accounts log in with an RSA session
//! (`csid` + `privk`), which the client decrypts (see docs/providers/mega.md).

csal_core::link_providers!(csal_mega);

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mega_live_passes_conformance() {
    let (Some(email), Some(password)) = (var("CSAL_LIVE_MEGA_EMAIL"), var("CSAL_LIVE_MEGA_PASSWORD")) else {
        eprintln!("SKIP mega live: set CSAL_LIVE_MEGA_EMAIL and CSAL_LIVE_MEGA_PASSWORD");
        return;
    };
    let root = var("CSAL_LIVE_MEGA_ROOT").unwrap_or_else(|| "csal-live-test".into());
    let config = serde_json::json!({ "email": email, "password": password, "root": root });
    let mut bad = config.clone();
    bad["password"] = "csal-wrong-password-000".into();
    let target = csal_conformance::Target::new("mega@live", "mega", config).list_objects(120).bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}
