//! Catalog behaviour on SQLite (always) and PostgreSQL (when
//! `CSAL_TEST_POSTGRES_URL` is set; a missing server under `CI` fails).

csal_core::link_providers!(csal_db);

use std::sync::Arc;
use std::time::{Duration, Instant};

use csal_catalog::{Catalog, CatalogOptions, MasterKey, ModuleUpdate, NewModule};
use csal_core::{
    ByteStream, Capabilities, ErrorKind, ExposeSecret, HealthReport, InstanceStatus, ListPage, ListRequest, ObjectMeta,
    Result, SecretString, StorageError, StorageModule, WriteMeta, WriteReceipt,
};
use serde_json::json;

// ------------------------------------------------------------------ harness

struct TestDb {
    url: String,
    key: SecretString,
    _dir: tempfile::TempDir,
}

impl TestDb {
    fn key(&self) -> MasterKey {
        MasterKey::Explicit(self.key.clone())
    }
    async fn open(&self) -> Catalog {
        Catalog::open_with(&self.url, self.key(), fast()).await.expect("open catalog")
    }
    /// Plain SQL on the catalog database, outside the catalog code.
    async fn raw(&self, sql: &str) -> Vec<String> {
        let loc = csal_sql::DbLocation::parse(&self.url, None, true).unwrap();
        let pool = loc.connect(1, Duration::from_secs(10)).await.unwrap();
        let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.iter().map(|r| sqlx::Row::try_get::<String, _>(r, 0).unwrap()).collect()
    }
}

fn fast() -> CatalogOptions {
    let mut options = CatalogOptions::default();
    options.poll_interval = Duration::from_millis(200);
    options
}

async fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/catalog.db", dir.path().display());
    TestDb { url, key: MasterKey::generate().unwrap(), _dir: dir }
}

/// A fresh schema in the test server, or `None` (with a SKIP line) when no
/// server is configured. Under CI a missing server is a failure.
async fn postgres_db() -> Option<TestDb> {
    let Ok(base) = std::env::var("CSAL_TEST_POSTGRES_URL") else {
        if std::env::var_os("CI").is_some() {
            panic!("CSAL_TEST_POSTGRES_URL is not set under CI: the PostgreSQL catalog tests cannot run");
        }
        eprintln!("SKIP: CSAL_TEST_POSTGRES_URL is not set; PostgreSQL catalog test skipped");
        return None;
    };
    let schema = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let loc = csal_sql::DbLocation::parse(&base, None, true).unwrap();
    let pool = loc.connect(1, Duration::from_secs(10)).await.expect("connect to CSAL_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.unwrap();
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    Some(TestDb { url, key: MasterKey::generate().unwrap(), _dir: tempfile::tempdir().unwrap() })
}

/// Run a scenario on both databases.
macro_rules! on_both {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::sqlite_db().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = super::postgres_db().await {
                    super::$name(db).await
                }
            }
        }
    )+};
}

on_both!(
    bad_config_is_refused_with_the_field_named,
    duplicate_name_is_refused,
    raw_row_holds_no_secret_in_clear,
    secret_left_empty_on_update_keeps_the_stored_value,
    stored_secrets_do_not_follow_a_changed_endpoint,
    wrong_master_key_is_a_clear_error,
    second_node_sees_a_change_without_restart,
    another_process_change_is_seen_without_restart,
    killed_writer_leaves_the_catalog_consistent,
    policy_fails_over_from_an_offline_first_target,
    settings_round_trip_with_secrets_sealed,
    write_in_flight_survives_a_reload_of_its_instance,
    rotated_master_key_replaces_the_old_one,
    tokens_have_scopes_and_legacy_tokens_become_admin,
    segment_index_pages_by_time_and_journals_copies,
    stored_segments_are_indexed_in_bulk_as_delivered,
    an_undecryptable_row_is_offline_and_the_others_load,
    a_node_whose_key_was_rotated_away_cannot_write,
    writes_racing_a_rotation_stay_readable,
);

const PW: &str = "S3cret-Passw0rd-xyzzy";

fn db_module(name: &str, config: serde_json::Value) -> NewModule {
    NewModule {
        name: name.into(),
        label: Some(format!("{name} label")),
        provider_type: "db".into(),
        is_enabled: true,
        config,
    }
}

fn pg_target_config() -> serde_json::Value {
    // Never connected to in these tests (the provider connects lazily).
    json!({"url": "postgres://recorder@127.0.0.1:1/videos", "password": PW, "table_prefix": "cam_"})
}

fn sqlite_target_config(dir: &std::path::Path, file: &str) -> serde_json::Value {
    json!({"url": format!("sqlite://{}/{file}", dir.display())})
}

/// Wait (bounded) until `check` holds, waking on every router reload.
async fn wait_for_reload(catalog: &Catalog, what: &str, check: impl Fn(&Catalog) -> bool) {
    let mut reloads = catalog.subscribe_reloads();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check(catalog) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for: {what}");
        let _ = tokio::time::timeout(left, reloads.changed()).await;
    }
}

// ---------------------------------------------------------------- scenarios

async fn bad_config_is_refused_with_the_field_named(db: TestDb) {
    let cat = db.open().await;
    let cases = [
        (json!({}), "'url'"),
        (json!({"url": "/tmp/x.db", "nope": 1}), "'nope'"),
        (json!({"url": "/tmp/x.db", "max_connections": "four"}), "'max_connections'"),
        (json!({"url": "/tmp/x.db", "table_prefix": "bad prefix;"}), "'table_prefix'"),
    ];
    for (config, field) in cases {
        let e = cat.create_module(db_module("m1", config)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
        assert!(e.to_string().contains(field), "error should name {field}: {e}");
    }
    let e = cat
        .create_module(NewModule { provider_type: "no_such_provider".into(), ..db_module("m1", json!({})) })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("no_such_provider"), "{e}");
    let e = cat.create_module(db_module("bad name!", json!({"url": "/tmp/x.db"}))).await.unwrap_err();
    assert!(e.to_string().contains("'name'"), "{e}");
    // A password typed into the URL would be stored in clear: refused.
    let e = cat.create_module(db_module("m1", json!({"url": "postgres://u:inline-pw@h/d"}))).await.unwrap_err();
    assert!(e.to_string().contains("'password'") && !e.to_string().contains("inline-pw"), "{e}");
    // Nothing half-written.
    assert!(cat.list_modules().await.unwrap().is_empty());
    assert_eq!(db.raw("SELECT name FROM storage_modules").await.len(), 0);
    // Updating with a bad config is refused too and leaves the row as it was.
    let ok = cat.create_module(db_module("m1", json!({"url": "/tmp/x.db"}))).await.unwrap();
    let e = cat
        .update_module("m1", ModuleUpdate { config: Some(json!({"url": ""})), ..Default::default() })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("'url'"), "{e}");
    assert_eq!(cat.get_module("m1").await.unwrap(), ok);
    cat.close().await;
}

async fn duplicate_name_is_refused(db: TestDb) {
    let cat = db.open().await;
    cat.create_module(db_module("archive", json!({"url": "/tmp/a.db"}))).await.unwrap();
    let e = cat.create_module(db_module("archive", json!({"url": "/tmp/b.db"}))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    assert!(e.to_string().contains("'archive'"), "{e}");
    let all = cat.list_modules().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].config["url"], "/tmp/a.db");
    // Lookup by id works as well as by name.
    assert_eq!(cat.get_module(&all[0].id).await.unwrap().name, "archive");
    assert_eq!(cat.get_module("nope").await.unwrap_err().kind(), ErrorKind::NotFound);
    cat.delete_module("archive").await.unwrap();
    assert_eq!(cat.delete_module("archive").await.unwrap_err().kind(), ErrorKind::NotFound);
    cat.close().await;
}

async fn raw_row_holds_no_secret_in_clear(db: TestDb) {
    let cat = db.open().await;
    let rec = cat.create_module(db_module("pg-archive", pg_target_config())).await.unwrap();
    assert_eq!(rec.config["password"], csal_core::secret::MASK);
    assert_eq!(rec.config["url"], "postgres://recorder@127.0.0.1:1/videos");
    let raw = db.raw("SELECT config_json FROM storage_modules").await;
    assert_eq!(raw.len(), 1);
    assert!(!raw[0].contains(PW), "secret stored in clear: {}", raw[0]);
    assert!(raw[0].contains("\"$enc\":\"v2:"), "{}", raw[0]);
    for shown in [
        format!("{:?}", cat.list_modules().await.unwrap()),
        format!("{:?}", cat.get_module("pg-archive").await.unwrap()),
    ] {
        assert!(!shown.contains(PW), "{shown}");
    }
    let defs = cat.definitions().await.unwrap();
    assert!(defs[0].config_json.contains(PW), "definitions are decrypted for the router");
    assert!(!format!("{defs:?}").contains(PW));
    let info = cat.router().instances();
    assert!(!serde_json::to_string(&info[0].masked_config).unwrap().contains(PW));
    cat.close().await;
}

async fn secret_left_empty_on_update_keeps_the_stored_value(db: TestDb) {
    let cat = db.open().await;
    cat.create_module(db_module("pg", pg_target_config())).await.unwrap();
    let password = |cat: Catalog| async move {
        let d = cat.definitions().await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&d[0].config_json).unwrap();
        (v["password"].as_str().map(str::to_owned), v["table_prefix"].as_str().map(str::to_owned))
    };
    let base = json!({"url": "postgres://recorder@127.0.0.1:1/videos", "table_prefix": "p2_"});
    // Empty string: kept.
    let mut cfg = base.clone();
    cfg["password"] = json!("");
    cat.update_module("pg", ModuleUpdate { config: Some(cfg), ..Default::default() }).await.unwrap();
    assert_eq!(password(cat.clone()).await, (Some(PW.into()), Some("p2_".into())));
    // The mask as the admin form shows it: kept.
    let mut cfg = base.clone();
    cfg["password"] = json!(csal_core::secret::MASK);
    cat.update_module("pg", ModuleUpdate { config: Some(cfg), ..Default::default() }).await.unwrap();
    assert_eq!(password(cat.clone()).await.0.as_deref(), Some(PW));
    // Absent: kept.
    cat.update_module("pg", ModuleUpdate { config: Some(base.clone()), ..Default::default() }).await.unwrap();
    assert_eq!(password(cat.clone()).await.0.as_deref(), Some(PW));
    // A new value replaces it; null removes it.
    let mut cfg = base.clone();
    cfg["password"] = json!("n3w-pa55word");
    cat.update_module("pg", ModuleUpdate { config: Some(cfg), ..Default::default() }).await.unwrap();
    assert_eq!(password(cat.clone()).await.0.as_deref(), Some("n3w-pa55word"));
    let mut cfg = base.clone();
    cfg["password"] = serde_json::Value::Null;
    let rec = cat.update_module("pg", ModuleUpdate { config: Some(cfg), ..Default::default() }).await.unwrap();
    assert_eq!(password(cat.clone()).await.0, None);
    assert!(rec.config.get("password").is_none());
    // Label and enabled alone leave the config untouched.
    let rec = cat
        .update_module("pg", ModuleUpdate { label: Some(None), is_enabled: Some(false), ..Default::default() })
        .await
        .unwrap();
    assert_eq!((rec.label, rec.is_enabled), (None, false));
    assert_eq!(rec.config["table_prefix"], "p2_");
    cat.close().await;
}

/// Issue 15 item 2: an update that moves a module to another host (a
/// credential target in the spec) must not keep the stored password.
async fn stored_secrets_do_not_follow_a_changed_endpoint(db: TestDb) {
    let cat = db.open().await;
    cat.create_module(db_module("pg", pg_target_config())).await.unwrap();
    let stored = |cat: Catalog| async move {
        let d = cat.definitions().await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&d[0].config_json).unwrap();
        (v["url"].as_str().unwrap().to_owned(), v["password"].as_str().map(str::to_owned))
    };
    let original = stored(cat.clone()).await;
    let elsewhere = json!({"url": "postgres://recorder@attacker.example:5432/videos", "table_prefix": "cam_"});
    for password in [None, Some(json!("")), Some(json!(csal_core::secret::MASK))] {
        let mut cfg = elsewhere.clone();
        if let Some(p) = password {
            cfg["password"] = p;
        }
        let e = cat.update_module("pg", ModuleUpdate { config: Some(cfg), ..Default::default() }).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.message().contains("'url'") && e.message().contains("'password'"), "{e}");
        assert!(!e.to_string().contains(PW));
        assert_eq!(stored(cat.clone()).await, original, "a refused update changed nothing");
    }
    // With the secret entered again, or removed, the move is allowed.
    let mut cfg = elsewhere.clone();
    cfg["password"] = json!("an0ther-pa55");
    cat.update_module("pg", ModuleUpdate { config: Some(cfg), ..Default::default() }).await.unwrap();
    assert_eq!(stored(cat.clone()).await.1.as_deref(), Some("an0ther-pa55"));
    let mut back = pg_target_config();
    back["password"] = serde_json::Value::Null;
    cat.update_module("pg", ModuleUpdate { config: Some(back), ..Default::default() }).await.unwrap();
    assert_eq!(stored(cat.clone()).await.1, None);
    // Fields that say nothing about where credentials go keep the secret.
    cat.update_module("pg", ModuleUpdate { config: Some(pg_target_config()), ..Default::default() }).await.unwrap();
    let same_host = json!({"url": "postgres://recorder@127.0.0.1:1/videos", "table_prefix": "other_"});
    cat.update_module("pg", ModuleUpdate { config: Some(same_host), ..Default::default() }).await.unwrap();
    assert_eq!(stored(cat.clone()).await.1.as_deref(), Some(PW));
    cat.close().await;
}

async fn wrong_master_key_is_a_clear_error(db: TestDb) {
    let cat = db.open().await;
    cat.create_module(db_module("pg", pg_target_config())).await.unwrap();
    cat.close().await;
    let wrong = MasterKey::Explicit(MasterKey::generate().unwrap());
    let e = Catalog::open_with(&db.url, wrong, fast()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.to_string().contains("master key does not match"), "{e}");
    let e = Catalog::open(&db.url, MasterKey::Explicit(SecretString::from("not base64!"))).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(!e.to_string().contains("not base64!"), "{e}");
    // The right key still works.
    let cat = db.open().await;
    assert_eq!(cat.list_modules().await.unwrap().len(), 1);
    cat.close().await;
}

async fn second_node_sees_a_change_without_restart(db: TestDb) {
    let node1 = db.open().await;
    let node2 = db.open().await;
    assert!(node2.router().handle("shared").is_err());
    node1.create_module(db_module("shared", json!({"url": "/tmp/shared.db"}))).await.unwrap();
    // node1 applies its own change at once.
    assert_eq!(node1.router().handle("shared").unwrap().status(), InstanceStatus::Ready);
    wait_for_reload(&node2, "node2 to load 'shared'", |c| c.router().handle("shared").is_ok()).await;
    node1.set_enabled("shared", false).await.unwrap();
    wait_for_reload(&node2, "node2 to see 'shared' disabled", |c| {
        c.router().handle("shared").is_ok_and(|h| h.status() == InstanceStatus::Disabled)
    })
    .await;
    node1.delete_module("shared").await.unwrap();
    wait_for_reload(&node2, "node2 to drop 'shared'", |c| c.router().handle("shared").is_err()).await;
    node1.close().await;
    node2.close().await;
}

/// The child half of `another_process_change_is_seen_without_restart`:
/// create one module, then exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_creates_module_entry() {
    let (Ok(url), Ok(key), Ok(name)) = (
        std::env::var("CSAL_CATALOG_CHILD_URL"),
        std::env::var("CSAL_CATALOG_CHILD_KEY"),
        std::env::var("CSAL_CATALOG_CHILD_CREATE"),
    ) else {
        return;
    };
    let cat = Catalog::open(&url, MasterKey::Explicit(SecretString::from(key))).await.unwrap();
    cat.create_module(db_module(&name, pg_target_config())).await.unwrap();
    cat.close().await;
}

fn spawn_child(db: &TestDb, test: &str, extra: &[(&str, &str)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("CSAL_CATALOG_CHILD_URL", &db.url)
        .env("CSAL_CATALOG_CHILD_KEY", db.key.expose_secret())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

async fn another_process_change_is_seen_without_restart(db: TestDb) {
    let cat = db.open().await;
    assert!(cat.router().handle("from-child").is_err());
    let status =
        spawn_child(&db, "child_creates_module_entry", &[("CSAL_CATALOG_CHILD_CREATE", "from-child")]).wait().unwrap();
    assert!(status.success(), "child failed: {status}");
    wait_for_reload(&cat, "the parent to load the module the child created", |c| {
        c.router().handle("from-child").is_ok_and(|h| h.status() == InstanceStatus::Ready)
    })
    .await;
    // Its secret was sealed by the child and opens here (same key).
    let defs = cat.definitions().await.unwrap();
    assert!(defs.iter().any(|d| d.name == "from-child" && d.config_json.contains(PW)));
    cat.close().await;
}

/// The child half of `killed_writer_leaves_the_catalog_consistent`: when
/// started by that test (env set), write to the catalog in a loop until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer_entry() {
    let (Ok(url), Ok(key)) = (std::env::var("CSAL_CATALOG_CHILD_URL"), std::env::var("CSAL_CATALOG_CHILD_KEY")) else {
        return;
    };
    let cat = Catalog::open(&url, MasterKey::Explicit(SecretString::from(key))).await.unwrap();
    for i in 0u64.. {
        let name = format!("child-{}", i % 7);
        let _ = cat.delete_policy("cam-child").await;
        let _ = cat.delete_module(&name).await;
        cat.create_module(db_module(&name, pg_target_config())).await.unwrap();
        cat.update_module(&name, ModuleUpdate { config: Some(pg_target_config()), ..Default::default() })
            .await
            .unwrap();
        cat.set_policy("cam-child", vec![name.clone()]).await.unwrap();
        cat.set_setting("child.counter", &i.to_string(), true).await.unwrap();
    }
}

async fn killed_writer_leaves_the_catalog_consistent(db: TestDb) {
    let cat = db.open().await;
    cat.create_module(db_module("before", pg_target_config())).await.unwrap();
    let start_seq = cat.change_seq().await.unwrap();
    let mut child = spawn_child(&db, "child_writer_entry", &[]);
    // Let it get well into its loop, then kill it (SIGKILL: no cleanup).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seq = cat.change_seq().await.unwrap();
        if seq >= start_seq + 40 {
            break;
        }
        assert!(Instant::now() < deadline, "child made no progress");
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        tokio::task::yield_now().await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    cat.close().await;

    // Reopen: every row decrypts, policies name existing modules, the
    // database is intact and writable.
    let cat = db.open().await;
    let defs = cat.definitions().await.unwrap();
    assert!(defs.iter().any(|d| d.name == "before"));
    for d in &defs {
        assert_eq!(d.load_error, None, "{} does not decrypt after the crash", d.name);
        let v: serde_json::Value = serde_json::from_str(&d.config_json).unwrap();
        assert_eq!(v["password"], PW, "{}", d.name);
    }
    for (camera, policy) in cat.list_policies().await.unwrap() {
        for t in policy.targets {
            assert!(defs.iter().any(|d| d.name == t), "policy of {camera} names missing module {t}");
        }
    }
    if db.url.starts_with("sqlite") {
        assert_eq!(db.raw("PRAGMA integrity_check").await, vec!["ok".to_owned()]);
    }
    if let Some(counter) = cat.get_setting("child.counter").await.unwrap() {
        counter.parse::<u64>().expect("secret setting decrypts to a number");
    }
    cat.create_module(db_module("after", pg_target_config())).await.unwrap();
    assert!(cat.router().handle("after").is_ok());
    cat.close().await;
}

// A module type registered by this test: an instance whose network is down
// (every write fails with a Transient error), and one that cannot load.
struct Unreachable;

#[csal_core::async_trait]
impl StorageModule for Unreachable {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn validate(&self) -> Result<()> {
        Err(StorageError::transient("connection refused"))
    }
    async fn write(&self, body: ByteStream, _meta: WriteMeta) -> Result<WriteReceipt> {
        // Read a little first, as a real upload would before the socket dies.
        let mut body = body;
        let _ = futures::StreamExt::next(&mut body).await;
        Err(StorageError::transient("connection reset by peer"))
    }
    async fn read(&self, _: &str, _: Option<csal_core::ByteRange>) -> Result<ByteStream> {
        Err(StorageError::transient("connection refused"))
    }
    async fn delete(&self, _: &str) -> Result<()> {
        Err(StorageError::transient("connection refused"))
    }
    async fn list(&self, _: &ListRequest) -> Result<ListPage> {
        Err(StorageError::transient("connection refused"))
    }
    async fn stat(&self, _: &str) -> Result<ObjectMeta> {
        Err(StorageError::transient("connection refused"))
    }
    async fn health_check(&self) -> HealthReport {
        HealthReport::offline(&StorageError::transient("connection refused"))
    }
}

const UNREACHABLE_FIELDS: &[csal_core::ConfigField] =
    &[csal_core::ConfigField::select("mode", "Mode", &["down", "broken"]).required()];

fn unreachable_factory(_: &csal_core::InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    match config["mode"].as_str() {
        Some("down") => Ok(Arc::new(Unreachable)),
        _ => Err(StorageError::permanent("cannot load: its credentials file is missing on this node")),
    }
}

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "test_unreachable",
    display_name: "Unreachable (test)",
    category: csal_core::ProviderCategory::NetworkProtocol,
    crate_name: "csal-catalog-tests",
    description: "test double: network down",
    fields: UNREACHABLE_FIELDS,
    factory: unreachable_factory,
});

async fn policy_fails_over_from_an_offline_first_target(db: TestDb) {
    let cat = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    let unreachable = |name: &str, mode: &str| NewModule {
        name: name.into(),
        label: None,
        provider_type: "test_unreachable".into(),
        is_enabled: true,
        config: json!({"mode": mode}),
    };
    cat.create_module(unreachable("down", "down")).await.unwrap();
    cat.create_module(unreachable("broken", "broken")).await.unwrap();
    cat.create_module(NewModule { is_enabled: false, ..db_module("off", sqlite_target_config(dir.path(), "off.db")) })
        .await
        .unwrap();
    cat.create_module(db_module("local", sqlite_target_config(dir.path(), "local.db"))).await.unwrap();

    // Unknown names are refused when the policy is saved.
    let e = cat.set_policy("cam1", vec!["down".into(), "typo".into()]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("'typo'"), "{e}");
    assert_eq!(cat.get_policy("cam1").await.unwrap_err().kind(), ErrorKind::NotFound);

    cat.set_policy("cam1", vec!["off".into(), "broken".into(), "down".into(), "local".into()]).await.unwrap();
    assert_eq!(cat.get_policy("cam1").await.unwrap().targets, vec!["off", "broken", "down", "local"]);
    let data = vec![42u8; 3 * 1024 * 1024 + 17];
    let done = cat
        .write_for_camera("cam1", ByteStream::from_bytes(data.clone()), WriteMeta::new("cam1/seg.mp4"))
        .await
        .unwrap();
    assert_eq!(done.target, "local");
    let passed: Vec<&str> = done.skipped.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(passed, vec!["off", "broken", "down"]);
    assert!(done.skipped[2].1.contains("connection reset"), "{:?}", done.skipped);
    let back = cat.router().read("local", &done.receipt.object_id, None).await.unwrap();
    assert_eq!(back.collect_limited(8 << 20).await.unwrap().as_ref(), &data[..]);

    // A one-shot body cannot be replayed after the failed attempt: clear error.
    let once = ByteStream::new(futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"abc"))]), Some(3));
    let e = cat.write_for_camera("cam1", once, WriteMeta::new("x")).await.unwrap_err();
    assert!(e.to_string().contains("cannot be replayed"), "{e}");

    // A module named by a policy cannot be deleted.
    let e = cat.delete_module("local").await.unwrap_err();
    assert!(e.to_string().contains("cam1"), "{e}");
    // No usable target at all: Unavailable, listing why.
    cat.set_policy("cam2", vec!["off".into(), "down".into()]).await.unwrap();
    let e = cat.write_for_camera("cam2", ByteStream::from_bytes(&b"x"[..]), WriteMeta::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("off") && e.to_string().contains("down"), "{e}");
    assert_eq!(cat.list_policies().await.unwrap().len(), 2);
    cat.delete_policy("cam2").await.unwrap();
    cat.delete_policy("cam2").await.unwrap();
    assert_eq!(cat.list_policies().await.unwrap().len(), 1);
    cat.close().await;
}

async fn settings_round_trip_with_secrets_sealed(db: TestDb) {
    let cat = db.open().await;
    assert_eq!(cat.get_setting("admin.password_hash").await.unwrap(), None);
    cat.set_setting("admin.password_hash", "$argon2id$v=19$abc", true).await.unwrap();
    cat.set_setting("ui.theme", "dark", false).await.unwrap();
    assert_eq!(cat.get_setting("admin.password_hash").await.unwrap().as_deref(), Some("$argon2id$v=19$abc"));
    assert_eq!(cat.get_setting("ui.theme").await.unwrap().as_deref(), Some("dark"));
    let raw = db.raw("SELECT value FROM csal_settings ORDER BY key").await;
    assert!(!raw[0].contains("argon2id") && raw[0].starts_with("v2:"), "{raw:?}");
    assert_eq!(raw[1], "dark");
    cat.set_setting("ui.theme", "light", false).await.unwrap();
    assert_eq!(cat.get_setting("ui.theme").await.unwrap().as_deref(), Some("light"));
    assert_eq!(cat.get_setting("bad key").await.unwrap_err().kind(), ErrorKind::InvalidInput);
    cat.close().await;
}

async fn rotated_master_key_replaces_the_old_one(db: TestDb) {
    let cat = db.open().await;
    cat.create_module(db_module("pg", pg_target_config())).await.unwrap();
    cat.set_setting("token", "tok-123456", true).await.unwrap();
    let new_key = MasterKey::generate().unwrap();
    cat.rotate_master_key(MasterKey::Explicit(new_key.clone())).await.unwrap();
    assert!(cat.definitions().await.unwrap()[0].config_json.contains(PW));
    cat.close().await;
    let e = Catalog::open(&db.url, db.key()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    let cat = Catalog::open_with(&db.url, MasterKey::Explicit(new_key), fast()).await.unwrap();
    assert!(cat.definitions().await.unwrap()[0].config_json.contains(PW));
    assert_eq!(cat.get_setting("token").await.unwrap().as_deref(), Some("tok-123456"));
    assert!(!db.raw("SELECT config_json FROM storage_modules").await[0].contains(PW));
    cat.close().await;
}

#[tokio::test]
async fn key_file_is_created_on_first_run_and_env_wins() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/cat.db", dir.path().display());
    let key_path = MasterKey::default_file_for(&url).unwrap();
    assert_eq!(key_path, dir.path().join("cat.db.key"));
    // This test must not see a key from the environment.
    if std::env::var_os(csal_catalog::MASTER_KEY_ENV).is_some() {
        eprintln!("SKIP: {} is set in the environment", csal_catalog::MASTER_KEY_ENV);
        return;
    }
    let cat = Catalog::open(&url, MasterKey::FromEnvOrFile(key_path.clone())).await.unwrap();
    cat.close().await;
    assert!(key_path.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let cat = Catalog::open(&url, MasterKey::FromEnvOrFile(key_path.clone())).await.unwrap();
    cat.close().await;
}

async fn write_in_flight_survives_a_reload_of_its_instance(db: TestDb) {
    let cat = db.open().await;
    let dir = tempfile::tempdir().unwrap();
    cat.create_module(db_module("local", sqlite_target_config(dir.path(), "local.db"))).await.unwrap();
    cat.set_policy("cam1", vec!["local".into()]).await.unwrap();
    // A body that sends one part, then waits for us before finishing.
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let first = futures::stream::iter(vec![Ok(bytes::Bytes::from(vec![1u8; 1_500_000]))]);
    let rest = futures::stream::once(async move {
        let _ = started_tx.send(());
        let _ = wait.await;
        Ok(bytes::Bytes::from(vec![2u8; 1000]))
    });
    let body = ByteStream::new(futures::StreamExt::chain(first, rest), None);
    let writer = {
        let cat = cat.clone();
        tokio::spawn(async move { cat.write_for_camera("cam1", body, WriteMeta::new("cam1/long.mp4")).await })
    };
    started.await.unwrap();
    // Change the instance under the running write: the router rebuilds it.
    let before = cat.router().handle("local").unwrap();
    cat.update_module("local", ModuleUpdate { label: Some(Some("renamed".into())), ..Default::default() })
        .await
        .unwrap();
    let after = cat.router().handle("local").unwrap();
    assert!(!Arc::ptr_eq(&before, &after), "the instance should have been rebuilt");
    release.send(()).unwrap();
    let done = writer.await.unwrap().expect("the in-flight write finishes on its old handle");
    assert_eq!(done.receipt.size, 1_501_000);
    let meta = cat.router().stat("local", &done.receipt.object_id).await.unwrap();
    assert_eq!(meta.size, 1_501_000);
    cat.close().await;
}

async fn tokens_have_scopes_and_legacy_tokens_become_admin(db: TestDb) {
    use csal_catalog::TokenScope;
    let cat = db.open().await;
    // A token stored the old way (a settings list) before migration 2 ran.
    let legacy = "csal_legacy-token-0123456789";
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(legacy.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    };
    let list = json!([{"name": "old", "sha256": hash, "created_unix": 1_700_000_000}]);
    cat.set_setting(csal_catalog::LEGACY_TOKENS_SETTING, &list.to_string(), false).await.unwrap();
    cat.close().await;
    let cat = db.open().await;
    assert_eq!(cat.verify_token(legacy).await.unwrap().unwrap().scope, TokenScope::Admin);
    assert!(cat.get_setting(csal_catalog::LEGACY_TOKENS_SETTING).await.unwrap().is_none());

    let rec = cat.create_token("recorder", TokenScope::Ingest).await.unwrap();
    let view = cat.create_token("viewer", TokenScope::Read).await.unwrap();
    assert_ne!(rec, view);
    assert_eq!(cat.create_token("recorder", TokenScope::Admin).await.unwrap_err().kind(), ErrorKind::AlreadyExists);
    let info = cat.verify_token(&rec).await.unwrap().unwrap();
    assert_eq!((info.name.as_str(), info.scope), ("recorder", TokenScope::Ingest));
    assert!(TokenScope::Ingest.permits(TokenScope::Ingest) && !TokenScope::Ingest.permits(TokenScope::Read));
    assert!(TokenScope::Admin.permits(TokenScope::Read) && !TokenScope::Read.permits(TokenScope::Admin));
    assert!(cat.verify_token("csal_nope").await.unwrap().is_none());
    assert!(cat.verify_token(&rec[..rec.len() - 1]).await.unwrap().is_none());
    let names: Vec<String> = cat.list_tokens().await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["old", "recorder", "viewer"]);
    assert!(db.raw("SELECT sha256 FROM api_tokens").await.iter().all(|h| !h.contains(&rec) && h.len() == 64));
    cat.revoke_token("recorder").await.unwrap();
    assert!(cat.verify_token(&rec).await.unwrap().is_none(), "revoked at once");
    assert_eq!(cat.revoke_token("recorder").await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(cat.create_token("bad name", TokenScope::Read).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    cat.close().await;
}

async fn stored_segments_are_indexed_in_bulk_as_delivered(db: TestDb) {
    use csal_catalog::{CopyState, NewSegment, SegmentQuery, StoredSegment, TimeSource};
    let cat = db.open().await;
    let t0 = 1_800_000_000_000i64;
    let stored = |n: i64| StoredSegment {
        segment: NewSegment {
            id: format!("seg-{n:04}"),
            camera_id: "cam".into(),
            name: format!("s{n:04}.ts"),
            start_ms: t0 + n * 10_000,
            duration_ms: Some(10_000),
            time_source: TimeSource::Header,
            size: 100 + n as u64,
            crc32c: 0,
            content_type: Some("video/mp2t".into()),
            node_id: "node-1".into(),
            copies_required: 2,
        },
        copies: vec![("a".into(), format!("cam/s{n:04}.ts")), ("b".into(), format!("x/s{n:04}.ts"))],
    };
    // More than one INSERT's worth of rows.
    let all: Vec<StoredSegment> = (0..1203).map(stored).collect();
    cat.index_stored_segments(&all).await.unwrap();
    let q = SegmentQuery { from_ms: None, to_ms: None, after: None, limit: 5000 };
    let listed = cat.list_segments("cam", &q).await.unwrap();
    assert_eq!(listed.len(), 1203);
    let last = &listed[1202];
    assert_eq!(
        (last.name.as_str(), last.end_ms, last.size, last.copies_stored),
        ("s1202.ts", t0 + 1203 * 10_000, 1302, 2)
    );
    assert!(!last.spooled, "already delivered: nothing for a spool to do");
    let copies = cat.copies_of(&["seg-0007"]).await.unwrap().remove("seg-0007").unwrap();
    assert_eq!(copies.len(), 2);
    assert!(copies.iter().all(|c| c.state == CopyState::Stored), "{copies:?}");
    assert_eq!(copies.iter().find(|c| c.target == "b").unwrap().object_id.as_deref(), Some("x/s0007.ts"));
    assert_eq!(cat.camera_stored_bytes("cam").await.unwrap(), (0..1203u64).map(|n| 2 * (100 + n)).sum::<u64>());
    // A name the camera already has: refused, and nothing of the batch indexed.
    let again =
        vec![StoredSegment { segment: NewSegment { id: "new".into(), ..stored(5000).segment }, copies: vec![] }, {
            let mut dup = stored(3);
            dup.segment.id = "dup".into();
            dup
        }];
    assert_eq!(cat.index_stored_segments(&again).await.unwrap_err().kind(), ErrorKind::AlreadyExists);
    assert_eq!(cat.segment_by_id("new").await.unwrap(), None);
}

async fn segment_index_pages_by_time_and_journals_copies(db: TestDb) {
    use csal_catalog::{CameraPolicy, CopyState, NewSegment, SegmentQuery, TimeSource};
    let cat = db.open().await;
    cat.create_module(db_module("a", json!({"url": "/tmp/csal-unused-a.db"}))).await.unwrap();
    cat.create_module(db_module("b", json!({"url": "/tmp/csal-unused-b.db"}))).await.unwrap();
    let e = cat.set_policy("cam", CameraPolicy::new(vec!["a".into()]).with_copies(2)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "more copies than targets");
    cat.set_policy("cam", CameraPolicy::new(vec!["a".into(), "b".into()]).with_copies(2)).await.unwrap();
    assert_eq!(cat.get_policy("cam").await.unwrap().copies, 2);
    let t0 = 1_800_000_000_000i64;
    let mut ids = Vec::new();
    for n in 0..25i64 {
        let seg = NewSegment {
            id: ulid::Ulid::new().to_string(),
            camera_id: "cam".into(),
            name: format!("s{n:03}.ts"),
            start_ms: t0 + n * 2000,
            duration_ms: Some(2000),
            time_source: TimeSource::Header,
            size: 1000 + n as u64,
            crc32c: n as u32,
            content_type: Some("video/mp2t".into()),
            node_id: "node-1".into(),
            copies_required: 2,
        };
        ids.push(cat.insert_segment(&seg).await.unwrap().id);
        if n == 0 {
            let mut again = seg.clone();
            again.id = ulid::Ulid::new().to_string();
            assert_eq!(cat.insert_segment(&again).await.unwrap_err().kind(), ErrorKind::AlreadyExists);
        }
    }
    // Pages of 10 over a window: segments overlapping [t0+5 s, t0+40 s).
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let q = SegmentQuery { from_ms: Some(t0 + 5000), to_ms: Some(t0 + 40_000), after: after.clone(), limit: 10 };
        let page = cat.list_segments("cam", &q).await.unwrap();
        after = page.last().map(|s| (s.start_ms, s.name.clone()));
        let done = page.len() < 10;
        seen.extend(page.into_iter().map(|s| s.name));
        if done {
            break;
        }
    }
    assert_eq!(seen.first().map(String::as_str), Some("s002.ts"), "s002 runs 4-6 s: overlaps the window");
    assert_eq!(seen.last().map(String::as_str), Some("s019.ts"));
    assert_eq!(seen.len(), 18);
    assert_eq!(cat.max_segment_duration("cam", None, None).await.unwrap(), 2000);
    // Playlist times: one dated, one not indexed.
    let missing = cat
        .set_segment_times("cam", &[("s001.ts".into(), Some(t0 + 1500), 2500), ("zzz.ts".into(), None, 1000)])
        .await
        .unwrap();
    assert_eq!(missing, ["zzz.ts"]);
    let s1 = cat.segment("cam", "s001.ts").await.unwrap().unwrap();
    assert_eq!((s1.start_ms, s1.end_ms, s1.time_source), (t0 + 1500, t0 + 4000, TimeSource::Playlist));
    // The journal: writing -> failed -> stored, twice: the segment is delivered.
    let id = &ids[3];
    cat.begin_copy(id, "a", "cam/x_hint.ts").await.unwrap();
    cat.copy_failed(id, "a", "target down").await.unwrap();
    cat.begin_copy(id, "a", "cam/x_hint.ts").await.unwrap();
    let rec = cat.copy_stored(id, "a", "cam/x_hint-1.ts").await.unwrap();
    assert_eq!((rec.copies_stored, rec.is_delivered()), (1, false));
    cat.begin_copy(id, "b", "cam/x_hint.ts").await.unwrap();
    let rec = cat.copy_stored(id, "b", "cam/x_hint-2.ts").await.unwrap();
    assert!(rec.is_delivered());
    let copies = cat.segment_copies(id).await.unwrap();
    assert_eq!(copies[0].attempts, 2);
    assert_eq!((copies[0].state, copies[1].state), (CopyState::Stored, CopyState::Stored));
    cat.mark_unspooled(id).await.unwrap();
    // Delivery queue and summaries.
    cat.defer_segment(&ids[4], i64::MAX).await.unwrap();
    let due = cat.due_segments("node-1", t0 * 2, 100).await.unwrap();
    assert_eq!(due.len(), 23, "neither the delivered one nor the deferred one is due");
    assert!(cat.due_segments("node-2", t0 * 2, 100).await.unwrap().is_empty(), "another node's spool is not ours");
    cat.retry_spooled_now("node-1").await.unwrap();
    assert_eq!(cat.due_segments("node-1", 1, 100).await.unwrap().len(), 24);
    let summary = cat.camera_summaries().await.unwrap();
    assert_eq!((summary[0].segments, summary[0].undelivered), (25, 24));
    assert_eq!(summary[0].bytes, (0..25).map(|n| 1000 + n).sum::<u64>());
    let nodes = cat.spool_summary().await.unwrap();
    assert_eq!((nodes[0].node_id.as_str(), nodes[0].segments), ("node-1", 24));
    assert_eq!(cat.spooled_segments("node-1").await.unwrap().len(), 24);
    // Data writes do not bump the configuration counter.
    let seq = cat.change_seq().await.unwrap();
    cat.begin_copy(&ids[5], "a", "h").await.unwrap();
    assert_eq!(cat.change_seq().await.unwrap(), seq);
    cat.close().await;
}

// ------------------------------------------------------ keys and bad rows

async fn an_undecryptable_row_is_offline_and_the_others_load(db: TestDb) {
    let cat = db.open().await;
    cat.create_module(db_module("good", pg_target_config())).await.unwrap();
    let bad = cat.create_module(db_module("bad", pg_target_config())).await.unwrap();
    cat.close().await;
    // Give "bad" the sealed password of "good": bound to another row, it
    // cannot be opened (as after a botched restore or a stale writer).
    let good_json = db.raw("SELECT config_json FROM storage_modules WHERE name = 'good'").await.remove(0);
    let loc = csal_sql::DbLocation::parse(&db.url, None, true).unwrap();
    let pool = loc.connect(1, Duration::from_secs(10)).await.unwrap();
    sqlx::query("UPDATE storage_modules SET config_json = $1 WHERE id = $2")
        .bind(&good_json)
        .bind(&bad.id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let cat = db.open().await;
    let router = cat.router();
    assert_eq!(router.handle("good").unwrap().status(), InstanceStatus::Ready);
    match router.handle("bad").unwrap().status() {
        InstanceStatus::Offline { kind, reason } => {
            assert_eq!(kind, ErrorKind::Auth);
            assert!(reason.contains("cannot decrypt") && reason.contains("'bad'"), "{reason}");
            assert!(!reason.contains(PW), "{reason}");
        }
        other => panic!("expected 'bad' offline, got {other:?}"),
    }
    let info = router.instances().into_iter().find(|i| i.name == "bad").unwrap();
    assert_eq!(info.masked_config.unwrap()["password"], csal_core::secret::MASK);
    // Entering the secret again repairs it.
    cat.update_module("bad", ModuleUpdate { config: Some(pg_target_config()), ..Default::default() }).await.unwrap();
    assert_eq!(router.handle("bad").unwrap().status(), InstanceStatus::Ready);
    cat.close().await;
}

async fn a_node_whose_key_was_rotated_away_cannot_write(db: TestDb) {
    let node_a = db.open().await;
    let node_b = db.open().await;
    node_a.create_module(db_module("first", pg_target_config())).await.unwrap();
    wait_for_reload(&node_b, "node B to load 'first'", |c| c.router().handle("first").is_ok()).await;
    let new_key = MasterKey::generate().unwrap();
    node_a.rotate_master_key(MasterKey::Explicit(new_key.clone())).await.unwrap();

    // node B still holds the old key: it must not seal anything with it.
    let e = node_b.create_module(db_module("stale", pg_target_config())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    assert!(e.message().contains("rotated"), "{e}");
    let e = node_b
        .update_module("first", ModuleUpdate { config: Some(pg_target_config()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    let e = node_b.set_setting("api.secret", "s3cr3t-value", true).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
    // ...and it keeps serving what it had rather than dropping everything.
    assert!(node_b.reload_router().await.is_err());
    assert_eq!(node_b.router().handle("first").unwrap().status(), InstanceStatus::Ready);

    node_a.close().await;
    node_b.close().await;
    let fresh = Catalog::open_with(&db.url, MasterKey::Explicit(new_key), fast()).await.unwrap();
    let defs = fresh.definitions().await.unwrap();
    assert_eq!(defs.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), vec!["first"]);
    assert!(defs.iter().all(|d| d.load_error.is_none()), "{defs:?}");
    assert_eq!(fresh.get_setting("api.secret").await.unwrap(), None);
    fresh.close().await;
}

async fn writes_racing_a_rotation_stay_readable(db: TestDb) {
    let cat = db.open().await;
    let new_key = MasterKey::generate().unwrap();
    let creates = (0..8).map(|i| {
        let cat = cat.clone();
        tokio::spawn(async move { cat.create_module(db_module(&format!("m{i}"), pg_target_config())).await })
    });
    let creates: Vec<_> = creates.collect();
    cat.rotate_master_key(MasterKey::Explicit(new_key.clone())).await.unwrap();
    for c in creates {
        if let Err(e) = c.await.unwrap() {
            panic!("a create in the rotating process failed: {e}");
        }
    }
    cat.close().await;
    let fresh = Catalog::open_with(&db.url, MasterKey::Explicit(new_key), fast()).await.unwrap();
    let defs = fresh.definitions().await.unwrap();
    assert_eq!(defs.len(), 8);
    for d in &defs {
        assert_eq!(d.load_error, None, "{} was sealed under the old key", d.name);
    }
    fresh.close().await;
}

// ----------------------------------------------------------------- sessions

fn session_limits() -> csal_catalog::SessionLimits {
    csal_catalog::SessionLimits {
        idle: Duration::from_secs(3600),
        absolute: Duration::from_secs(4 * 3600),
        max_unauthenticated: 20,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_absolute_end_however_busy() {
    let db = sqlite_db().await;
    let cat = db.open().await;
    let limits = session_limits();
    let (id, rec) = cat.create_session(true, cat.session_epoch().await.unwrap(), &limits).await.unwrap();
    assert!(!db.raw("SELECT id_hash FROM csal_sessions").await[0].contains(&id), "the cookie value is stored");
    let exec = |sql: String| {
        let url = db.url.clone();
        async move {
            let loc = csal_sql::DbLocation::parse(&url, None, true).unwrap();
            let pool = loc.connect(1, Duration::from_secs(10)).await.unwrap();
            sqlx::query(&sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    };
    // Used a while ago: the idle clock restarts, the absolute end does not move.
    exec("UPDATE csal_sessions SET last_seen_at = last_seen_at - 600000".into()).await;
    let seen = cat.session(&id, &limits).await.unwrap().expect("live");
    assert_eq!(seen.expires_at, rec.expires_at);
    // Past the absolute end: gone, even though it was used just now.
    exec("UPDATE csal_sessions SET expires_at = expires_at - 5 * 3600 * 1000".into()).await;
    assert!(cat.session(&id, &limits).await.unwrap().is_none());
    assert!(db.raw("SELECT id_hash FROM csal_sessions").await.is_empty());
    // Idle too long: gone.
    let (id, _) = cat.create_session(true, cat.session_epoch().await.unwrap(), &limits).await.unwrap();
    exec("UPDATE csal_sessions SET last_seen_at = last_seen_at - 2 * 3600 * 1000".into()).await;
    assert!(cat.session(&id, &limits).await.unwrap().is_none());
    cat.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_sessions_voids_one_being_created_with_the_old_epoch() {
    let db = sqlite_db().await;
    let cat = db.open().await;
    let limits = session_limits();
    let epoch = cat.session_epoch().await.unwrap();
    let (before, _) = cat.create_session(true, epoch, &limits).await.unwrap();
    cat.end_sessions().await.unwrap();
    // A login that read the epoch before the password change finishes now.
    let (late, _) = cat.create_session(true, epoch, &limits).await.unwrap();
    assert!(cat.session(&before, &limits).await.unwrap().is_none());
    assert!(cat.session(&late, &limits).await.unwrap().is_none(), "a session of an ended epoch is valid");
    let (fresh, _) = cat.create_session(true, cat.session_epoch().await.unwrap(), &limits).await.unwrap();
    assert!(cat.session(&fresh, &limits).await.unwrap().is_some());
    cat.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_page_flood_keeps_logged_in_sessions() {
    let db = sqlite_db().await;
    let cat = db.open().await;
    let limits = session_limits();
    let epoch = cat.session_epoch().await.unwrap();
    let (admin, _) = cat.create_session(true, epoch, &limits).await.unwrap();
    for _ in 0..limits.max_unauthenticated + 10 {
        cat.create_session(false, epoch, &limits).await.unwrap();
    }
    assert!(cat.session(&admin, &limits).await.unwrap().is_some_and(|s| s.authenticated));
    let rows = db.raw("SELECT id_hash FROM csal_sessions").await.len() as u64;
    assert!(rows <= limits.max_unauthenticated + 1, "{rows} sessions kept");
    cat.close().await;
}
