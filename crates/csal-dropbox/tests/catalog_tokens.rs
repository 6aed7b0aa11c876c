//! A token refreshed mid-upload is persisted, encrypted, in the catalog:
//! a `TokenStore` adapter over `csal-catalog` (update_module keeps the other
//! secret fields, and the catalog seals secrets with its master key).

csal_core::link_providers!(csal_dropbox);

use std::sync::Arc;

use csal_catalog::{Catalog, MasterKey, ModuleUpdate, NewModule};
use csal_core::{ByteStream, ExposeSecret, Result, StorageModule, WriteMeta};
use csal_dropbox::{DropboxConfig, DropboxModule};
use csal_fakes::dropbox::{APP_KEY, APP_SECRET, CHUNK_UNIT, FakeDropbox, REFRESH_TOKEN};
use csal_oauth::{TokenSet, TokenStore};

/// Saves refreshed tokens into the instance's secret config fields.
struct CatalogTokenStore {
    catalog: Arc<Catalog>,
    instance: String,
}

#[async_trait::async_trait]
impl TokenStore for CatalogTokenStore {
    async fn save(&self, tokens: &TokenSet) -> Result<()> {
        // Secrets come back masked; masked values keep what is stored.
        let mut config = self.catalog.get_module(&self.instance).await?.config;
        config["access_token"] = tokens.access_token.expose_secret().into();
        if let Some(r) = &tokens.refresh_token {
            config["refresh_token"] = r.expose_secret().into();
        }
        let update = ModuleUpdate { config: Some(config), ..Default::default() };
        self.catalog.update_module(&self.instance, update).await.map(|_| ())
    }
}

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
    let store = Arc::new(CatalogTokenStore { catalog: catalog.clone(), instance: "dbx".into() });
    let typed: DropboxConfig = serde_json::from_value(config).unwrap();
    let module = DropboxModule::new(typed, Some(store as Arc<dyn TokenStore>)).unwrap();

    fake.expire_access_tokens_after(2);
    let body = bytes::Bytes::from(vec![7u8; 3 * CHUNK_UNIT + 10]);
    let receipt = module.write(ByteStream::from_bytes(body.clone()), WriteMeta::new("cam/seg.bin")).await.unwrap();
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
