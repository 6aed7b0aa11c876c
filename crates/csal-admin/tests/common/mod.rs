//! Shared by the admin tests: a catalog in a temp dir, a password, and a
//! tiny test-only provider `test_s3` with a secret field (a stand-in for an
//! S3-type module, backed by the memory provider).

#![allow(dead_code)]

use std::sync::Arc;

use csal_catalog::{Catalog, MasterKey, NewModule};
use csal_core::{ConfigField, InstanceContext, ProviderCategory, ProviderRegistration, StorageModule};

csal_core::link_providers!(csal_local_fs, csal_memory);

pub const PASSWORD: &str = "admin-password-for-tests";
pub const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-TopSecretKey";

const TEST_S3_FIELDS: &[ConfigField] = &[
    ConfigField::text("bucket", "Bucket").required(),
    ConfigField::url("endpoint", "Endpoint URL"),
    ConfigField::text("access_key_id", "Access key id").required(),
    ConfigField::secret("secret_access_key", "Secret access key").required(),
];

/// Set to make `test_s3` modules with bucket `fails-to-load` fail to load
/// (to show how the Module Manager lists broken instances).
pub static FAIL_LOAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn build_test_s3(ctx: &InstanceContext, config: &serde_json::Value) -> csal_core::Result<Arc<dyn StorageModule>> {
    if FAIL_LOAD.load(std::sync::atomic::Ordering::SeqCst) && config["bucket"] == "fails-to-load" {
        return Err(csal_core::StorageError::invalid_config("field 'bucket': bucket 'fails-to-load' does not exist"));
    }
    csal_core::find_provider("memory")?.build(ctx, &serde_json::json!({}))
}

csal_core::register_provider!(ProviderRegistration {
    provider_type: "test_s3",
    display_name: "Test S3 (secret field)",
    category: ProviderCategory::ObjectStorage,
    crate_name: "csal-admin-tests",
    description: "Test-only provider with an S3-like config and a secret key; stores in memory.",
    fields: TEST_S3_FIELDS,
    factory: build_test_s3,
});

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub catalog: Catalog,
    pub url: String,
    pub key: csal_core::SecretString,
}

pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("csal.db").display());
    let key = MasterKey::generate().unwrap();
    let catalog = Catalog::open(&url, MasterKey::Explicit(key.clone())).await.unwrap();
    csal_admin::auth::set_password(&catalog, PASSWORD).await.unwrap();
    Fixture { dir, catalog, url, key }
}

impl Fixture {
    /// A second catalog handle on the same database (a fresh router).
    pub async fn reopen(&self) -> Catalog {
        Catalog::open(&self.url, MasterKey::Explicit(self.key.clone())).await.unwrap()
    }
    pub fn root(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    pub async fn add_local(&self, name: &str) {
        self.catalog
            .create_module(NewModule {
                name: name.into(),
                label: None,
                provider_type: "local_fs".into(),
                is_enabled: true,
                config: serde_json::json!({"root": self.root(name), "min_free_mb": 1}),
            })
            .await
            .unwrap();
    }
    pub async fn add_test_s3(&self, name: &str) {
        self.catalog
            .create_module(NewModule {
                name: name.into(),
                label: None,
                provider_type: "test_s3".into(),
                is_enabled: true,
                config: serde_json::json!({"bucket": "b", "access_key_id": "AKIDEXAMPLE", "secret_access_key": SECRET}),
            })
            .await
            .unwrap();
    }
}
