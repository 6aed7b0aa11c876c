//! Tokens of a catalog-configured instance: the router hands the module the
//! catalog as its config sink, so a refresh (with Box's single-use,
//! rotating refresh tokens) is persisted encrypted, survives a restart, and
//! health warns before the refresh token expires.

csal_core::link_providers!(csal_box);

use std::time::{Duration, SystemTime};

use csal_catalog::{Catalog, MasterKey, NewModule};
use csal_core::{ByteStream, HealthStatus, WriteMeta};
use csal_fakes::boxapi::{CLIENT_ID, CLIENT_SECRET, FakeBox, REFRESH_TOKEN};

fn config(fake: &FakeBox, access_token: &str) -> serde_json::Value {
    serde_json::json!({
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN, "access_token": access_token,
        "session_threshold_kib": 256,
        "api_url": fake.api_url(), "upload_url": fake.upload_url(), "token_url": fake.token_url(),
    })
}

async fn open_catalog(path: &std::path::Path, key: &csal_core::SecretString) -> Catalog {
    let url = format!("sqlite://{}", path.display());
    Catalog::open(&url, MasterKey::Explicit(key.clone())).await.unwrap()
}

async fn stored_config(catalog: &Catalog, name: &str) -> serde_json::Value {
    let def = catalog.definitions().await.unwrap().into_iter().find(|d| d.name == name).unwrap();
    serde_json::from_str(&def.config_json).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_refresh_token_is_saved_encrypted_in_the_catalog_and_survives_restart() {
    let fake = FakeBox::start().await;
    fake.set_session_limits(256 * 1024, 64 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("catalog.db");
    let key = MasterKey::generate().unwrap();
    let catalog = open_catalog(&db, &key).await;
    let first = fake.issue_access_token();
    let new = NewModule {
        name: "bx".into(),
        label: None,
        provider_type: "box".into(),
        is_enabled: true,
        config: config(&fake, &first),
    };
    catalog.create_module(new).await.unwrap();

    // The token runs out in the middle of an upload session: the module
    // refreshes, spending the single-use refresh token.
    fake.expire_access_tokens_after(3);
    let body = bytes::Bytes::from(vec![5u8; 5 * 64 * 1024 + 7]);
    let router = catalog.router();
    let receipt =
        router.write("bx", ByteStream::from_bytes(body.clone()), WriteMeta::new("cam/seg.bin")).await.unwrap();
    assert_eq!(receipt.size, body.len() as u64);
    assert_eq!(fake.expired_rejections(), 1, "the token did not expire mid-upload");
    assert!(fake.sessions_created() == 1 && fake.commits() == 1);
    assert!(!fake.refresh_token_valid(REFRESH_TOKEN), "the configured refresh token was not spent");

    let stored = stored_config(&catalog, "bx").await;
    let access = stored["access_token"].as_str().unwrap().to_owned();
    let refresh = stored["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(access, first, "the refreshed access token was not saved");
    assert_ne!(refresh, REFRESH_TOKEN, "the rotated refresh token was not saved");
    assert!(fake.refresh_token_valid(&refresh), "the saved refresh token is not the live one");
    let expires = humantime::parse_rfc3339(stored["refresh_token_expires_at"].as_str().unwrap()).unwrap();
    let left = expires.duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(59 * 24 * 3600), "refresh token expiry not ~60 days out: {left:?}");
    assert_eq!(catalog.get_module("bx").await.unwrap().config["refresh_token"], csal_core::secret::MASK);
    catalog.close().await;
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let text = String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned();
        assert!(!text.contains(&refresh), "{} holds the refresh token in clear", entry.path().display());
    }

    // A restart: the new process reads with the saved access token, and
    // when that expires it refreshes with the saved (rotated) refresh token.
    let token_requests = fake.token_requests();
    let catalog = open_catalog(&db, &key).await;
    let read = catalog.router().read("bx", &receipt.object_id, None).await.unwrap();
    assert_eq!(read.collect_limited(1 << 24).await.unwrap(), body);
    assert_eq!(fake.token_requests(), token_requests, "the restarted instance did not use the saved token");
    fake.expire_access_tokens();
    let again = catalog.router().read("bx", &receipt.object_id, None).await.unwrap();
    assert_eq!(again.collect_limited(1 << 24).await.unwrap(), body);
    assert_eq!(fake.token_requests(), token_requests + 1);
    assert!(!fake.refresh_token_valid(&refresh), "the restarted instance did not refresh with the saved token");
    catalog.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_degraded_a_week_before_the_refresh_token_expires() {
    let fake = FakeBox::start().await;
    let at = |days: u64| humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(days * 86400));
    let module = |days: u64| {
        let mut cfg = config(&fake, &fake.issue_access_token());
        cfg["refresh_token_expires_at"] = at(days).to_string().into();
        csal_core::find_provider("box")
            .unwrap()
            .build(&csal_core::InstanceContext::new("bx", "bx", "box"), &cfg)
            .unwrap()
    };
    let soon = module(2).health_check().await;
    assert_eq!(soon.status, HealthStatus::Degraded, "{soon:?}");
    assert!(soon.last_error.as_deref().unwrap_or("").contains("re-authorise"), "{soon:?}");
    let later = module(50).health_check().await;
    assert_eq!(later.status, HealthStatus::Ok, "{later:?}");

    let mut bad = config(&fake, "x");
    bad["refresh_token_expires_at"] = "next tuesday".into();
    let err = csal_core::find_provider("box")
        .unwrap()
        .build(&csal_core::InstanceContext::new("bx", "bx", "box"), &bad)
        .err()
        .expect("a malformed expiry is refused");
    assert_eq!(err.kind(), csal_core::ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("refresh_token_expires_at"), "{err}");
}
