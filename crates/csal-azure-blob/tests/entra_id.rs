//! Entra ID credentials (`auth = "client_secret"` and `"managed_identity"`)
//! against Azurite's HTTPS instance with `--oauth basic` (started by
//! `cargo xtask`, which exports `CSAL_TEST_AZURE_HTTPS_ENDPOINT` and the CA
//! of its certificate as `CSAL_TEST_AZURE_CA_FILE`). Azurite checks each
//! bearer token's lifetime, issuer and audience; the tokens come from
//! csal-fakes' Entra ID / IMDS fake on loopback.
//!
//! The client trusts the test CA through `SSL_CERT_FILE`, which the
//! platform verifier reads; the test sets it in its own process (nextest
//! runs each test in one), so no test hook is needed in the library.

csal_core::link_providers!(csal_azure_blob);

use std::sync::{Arc, Mutex};

use csal_azure_blob::AzureBlobModule;
use csal_core::{ErrorKind, StorageModule};
use csal_fakes::entra::EntraFake;
use csal_testkit::credentials::{refused_write_is_auth, write_read_list_delete};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID: &str = "0b1d3c5e-7f90-4a2b-8c4d-6e8f0a1b2c3d";
const CLIENT_SECRET: &str = "Xq8~csal-test-client-secret-7Yh";
const MANAGED_CLIENT_ID: &str = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d";
const CONTAINER: &str = "csal-entra";

struct Azurite {
    endpoint: String,
    account: String,
    key: String,
}

fn azurite(label: &str) -> Option<Azurite> {
    let endpoint = csal_conformance::require_env("CSAL_TEST_AZURE_HTTPS_ENDPOINT", label, "azure_blob")?;
    let ca = csal_conformance::require_env("CSAL_TEST_AZURE_CA_FILE", label, "azure_blob")?;
    // SAFETY: each test runs in its own process under nextest, before any
    // thread that reads the environment exists.
    unsafe { std::env::set_var("SSL_CERT_FILE", ca) };
    let account = csal_conformance::require_env("CSAL_TEST_AZURE_ACCOUNT", label, "azure_blob")?;
    let key = csal_conformance::require_env("CSAL_TEST_AZURE_KEY", label, "azure_blob")?;
    Some(Azurite { endpoint, account, key })
}

fn module(config: serde_json::Value) -> csal_core::Result<AzureBlobModule> {
    AzureBlobModule::new(csal_core::parse_config("azure_blob", &config)?)
}

impl Azurite {
    /// The container, created with the account key (over the same HTTPS port).
    async fn ensure_container(&self) {
        let admin = module(serde_json::json!({
            "account": self.account, "container": CONTAINER, "endpoint": self.endpoint, "account_key": self.key,
        }))
        .unwrap();
        admin.create_container().await.expect("create the container over HTTPS with the account key");
    }

    fn client_secret(&self, fake: &EntraFake, secret: &str) -> serde_json::Value {
        serde_json::json!({
            "account": self.account,
            "container": CONTAINER,
            "endpoint": self.endpoint,
            "auth": "client_secret",
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "authority_host": fake.authority_host(),
        })
    }

    fn managed_identity(&self, fake: &EntraFake, client_id: Option<&str>) -> serde_json::Value {
        let mut config = serde_json::json!({
            "account": self.account,
            "container": CONTAINER,
            "endpoint": self.endpoint,
            "auth": "managed_identity",
            "imds_endpoint": fake.imds_endpoint(),
        });
        if let Some(id) = client_id {
            config["client_id"] = serde_json::json!(id);
        }
        config
    }
}

async fn fake() -> EntraFake {
    EntraFake::start(TENANT, CLIENT_ID, CLIENT_SECRET, MANAGED_CLIENT_ID).await
}

/// Everything the crate logs at any level, for a look for secrets.
fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(logs.clone());
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();
    logs
}

#[tokio::test]
async fn client_secret_tokens_write_read_list_and_delete() {
    let Some(az) = azurite("azure_blob@azurite-https (client_secret)") else { return };
    let logs = capture_logs();
    az.ensure_container().await;
    let fake = fake().await;
    let config = az.client_secret(&fake, CLIENT_SECRET);
    let module = module(config.clone()).unwrap();
    let parsed: csal_azure_blob::AzureBlobConfig = csal_core::parse_config("azure_blob", &config).unwrap();
    assert!(!format!("{parsed:?}").contains(CLIENT_SECRET), "Debug of the config shows the secret");

    write_read_list_delete(&module, "entra-client-secret").await;
    assert_eq!(fake.issued(), 1, "one token, kept for every call until it nears expiry");
    module.refresh_credentials().await.unwrap();
    assert_eq!(fake.issued(), 2, "refresh_credentials gets a new token");

    // A wrong secret: the token endpoint refuses it (invalid_client), which is Auth.
    let wrong = module_with_secret(&az, &fake, "wrong-secret-Zz9");
    let err = refused_write_is_auth(&wrong, &[CLIENT_SECRET, "wrong-secret-Zz9"]).await;
    assert!(err.message().contains("client"), "{err}");

    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(!logged.is_empty(), "the capture works");
    assert!(!logged.contains(CLIENT_SECRET) && !logged.contains("wrong-secret-Zz9"), "a client secret was logged");
}

fn module_with_secret(az: &Azurite, fake: &EntraFake, secret: &str) -> AzureBlobModule {
    module(az.client_secret(fake, secret)).unwrap()
}

#[tokio::test]
async fn managed_identity_tokens_write_read_list_and_delete() {
    let Some(az) = azurite("azure_blob@azurite-https (managed_identity)") else { return };
    az.ensure_container().await;
    let fake = fake().await;

    write_read_list_delete(&module(az.managed_identity(&fake, None)).unwrap(), "entra-system-assigned").await;
    let user_assigned = module(az.managed_identity(&fake, Some(MANAGED_CLIENT_ID))).unwrap();
    write_read_list_delete(&user_assigned, "entra-user-assigned").await;
    assert_eq!(fake.issued(), 2, "one token per identity");

    // An identity this host does not have: IMDS says "Identity not found".
    let stranger = module(az.managed_identity(&fake, Some("00000000-0000-4000-8000-000000000000"))).unwrap();
    let err = refused_write_is_auth(&stranger, &[]).await;
    assert!(err.message().contains("managed identity"), "{err}");
}

#[tokio::test]
async fn a_refused_token_is_renewed_once_and_an_expired_one_is_auth() {
    let Some(az) = azurite("azure_blob@azurite-https (expired token)") else { return };
    az.ensure_container().await;
    let fake = fake().await;

    // The first token has already expired: Azurite refuses it, the module
    // gets a new one and sends the request again.
    fake.expire_next_tokens(1);
    write_read_list_delete(&module(az.client_secret(&fake, CLIENT_SECRET)).unwrap(), "entra-renewed").await;
    assert_eq!(fake.issued(), 2, "the refused token was replaced once");

    // Every token expired (a host clock far off): Auth, after one renewal.
    fake.expire_next_tokens(u64::MAX);
    let stale = module(az.managed_identity(&fake, None)).unwrap();
    let before = fake.issued();
    refused_write_is_auth(&stale, &[]).await;
    assert_eq!(fake.issued() - before, 2, "one token, one renewal, then the refusal is reported");
}

#[test]
fn bearer_tokens_need_https_and_modes_do_not_mix() {
    let base = serde_json::json!({
        "account": "devstoreaccount1",
        "container": CONTAINER,
        "auth": "client_secret",
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    });
    let with = |extra: serde_json::Value| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        module(c)
    };
    assert!(with(serde_json::json!({})).is_ok(), "the public endpoint is https");
    for (extra, field) in [
        (serde_json::json!({"endpoint": "http://127.0.0.1:10000/devstoreaccount1"}), "endpoint"),
        (serde_json::json!({"authority_host": "http://login.example.com"}), "authority_host"),
        (serde_json::json!({"account_key": "a2V5"}), "account_key"),
        (serde_json::json!({"imds_endpoint": "http://169.254.169.254"}), "imds_endpoint"),
        (serde_json::json!({"tenant_id": "a/b"}), "tenant_id"),
        (serde_json::json!({"client_secret": " "}), "client_secret"),
        (serde_json::json!({"auth": "managed_identity"}), "tenant_id"),
        (serde_json::json!({"auth": "shared_key", "account_key": "a2V5"}), "tenant_id"),
    ] {
        let err = with(extra.clone()).err().unwrap_or_else(|| panic!("{extra} was accepted"));
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.message().contains(field), "{extra}: {err}");
        assert!(!format!("{err:?}").contains(CLIENT_SECRET), "{err:?}");
    }
}
