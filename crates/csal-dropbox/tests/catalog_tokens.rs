//! A token refreshed mid-upload is persisted, encrypted, in the catalog: the
//! catalog's router hands each instance the catalog as its config sink, and
//! the provider's token manager saves refreshed tokens through it.

csal_core::link_providers!(csal_dropbox);

use std::sync::Arc;

use csal_catalog::{Catalog, MasterKey, NewModule};
use csal_core::{ByteStream, WriteMeta};
use csal_fakes::dropbox::{APP_KEY, APP_SECRET, CHUNK_UNIT, FakeDropbox, REFRESH_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refreshed_mid_upload_is_stored_encrypted_in_the_catalog() {
    let fake = FakeDropbox::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("catalog.db");
    let catalog = Arc::new(
        Catalog::open(&format!("sqlite://{}", db.display()), MasterKey::Explicit(MasterKey::generate().unwrap()))
            .await
            .unwrap(),
    );
    let first = fake.issue_access_token();
    let config = serde_json::json!({
        "app_key": APP_KEY, "app_secret": APP_SECRET, "refresh_token": REFRESH_TOKEN, "access_token": first,
        "root_path": "/csal", "chunk_size_mb": 4,
        "api_url": fake.base_url(), "content_url": fake.base_url(), "token_url": fake.token_url(),
    });
    catalog
        .create_module(NewModule {
            name: "dbx".into(),
            label: None,
            provider_type: "dropbox".into(),
            is_enabled: true,
            config: config.clone(),
        })
        .await
        .unwrap();
    fake.expire_access_tokens_after(2);
    let body = bytes::Bytes::from(vec![7u8; 3 * CHUNK_UNIT + 10]);
    let receipt = catalog
        .router()
        .write("dbx", ByteStream::from_bytes(body.clone()), WriteMeta::new("cam/seg.bin"))
        .await
        .unwrap();
    assert_eq!(receipt.size, body.len() as u64);
    assert_eq!(fake.expired_rejections(), 1, "the token did not expire mid-upload");

    // The catalog now holds the refreshed token (decrypted for the router) ...
    let def = catalog.definitions().await.unwrap().into_iter().find(|d| d.name == "dbx").unwrap();
    let stored: serde_json::Value = serde_json::from_str(&def.config_json).unwrap();
    let new_token = stored["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, first);
    assert!(new_token.starts_with("fake-access-"));
    assert_eq!(stored["refresh_token"], REFRESH_TOKEN, "the other secrets were kept");
    // ... masked in listings, and never in clear in the database files.
    assert_eq!(catalog.get_module("dbx").await.unwrap().config["access_token"], csal_core::secret::MASK);
    catalog.close().await;
    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&new_token), "{} holds the token in clear", entry.path().display());
    }
}
