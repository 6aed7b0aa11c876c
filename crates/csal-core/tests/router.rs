//! The router and its layers, with small test providers registered here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, Checksum, ConfigField, ErrorKind, ExposeSecret, HealthReport, InstanceContext,
    InstanceDefinition, InstanceStatus, LayerConfig, ListPage, ListRequest, ObjectMeta, ProviderCategory,
    ProviderRegistration, Result, SecretString, StorageError, StorageModule, StorageRouter, WriteMeta, WriteReceipt,
};
use futures::StreamExt;
use serde_json::json;

/// Builds of the `counted` provider (used by one test only).
static COUNTED_BUILDS: AtomicU32 = AtomicU32::new(0);

/// A provider that fails `fail_times` times with a transient error (which
/// echoes its secret, as a careless SDK might) before succeeding.
struct Flaky {
    fail_times: u32,
    calls: AtomicU32,
    token: SecretString,
    hang: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FlakyConfig {
    #[serde(default)]
    fail_times: u32,
    token: SecretString,
    #[serde(default)]
    hang: bool,
    #[serde(default)]
    refuse: bool,
}

const FLAKY_FIELDS: &[ConfigField] = &[
    ConfigField::number("fail_times", "Failures before success"),
    ConfigField::secret("token", "Token").required(),
    ConfigField::bool("hang", "Never answer"),
    ConfigField::bool("refuse", "Factory fails"),
];

fn build_flaky(_: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let c: FlakyConfig = csal_core::parse_config("flaky", config)?;
    if c.refuse {
        return Err(StorageError::auth(format!("token {} rejected by factory", c.token.expose_secret())));
    }
    Ok(Arc::new(Flaky { fail_times: c.fail_times, calls: AtomicU32::new(0), token: c.token, hang: c.hang }))
}

impl Flaky {
    async fn attempt(&self) -> Result<()> {
        if self.hang {
            futures::future::pending::<()>().await;
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_times {
            return Err(StorageError::transient(format!("GET https://x/?token={} failed", self.token.expose_secret()))
                .with_retry_after(Some(Duration::from_millis(5))));
        }
        Ok(())
    }
}

#[async_trait]
impl StorageModule for Flaky {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn validate(&self) -> Result<()> {
        self.attempt().await
    }
    async fn write(&self, mut body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        let mut size = 0;
        while let Some(chunk) = body.next().await {
            size += chunk?.len() as u64;
        }
        self.attempt().await?;
        Ok(WriteReceipt { object_id: meta.key_hint, size, checksum: None, etag: None, instance: None })
    }
    async fn read(&self, _id: &str, _range: Option<ByteRange>) -> Result<ByteStream> {
        self.attempt().await?;
        Ok(ByteStream::from_bytes(&b"data"[..]))
    }
    async fn delete(&self, _id: &str) -> Result<()> {
        self.attempt().await
    }
    async fn list(&self, _r: &ListRequest) -> Result<ListPage> {
        self.attempt().await?;
        Ok(ListPage::default())
    }
    async fn stat(&self, id: &str) -> Result<ObjectMeta> {
        self.attempt().await?;
        Ok(ObjectMeta::new(id, 4))
    }
    async fn health_check(&self) -> HealthReport {
        match self.attempt().await {
            Ok(()) => HealthReport::ok(Duration::from_millis(1)),
            Err(e) => HealthReport::offline(&e),
        }
    }
}

csal_core::register_provider!(ProviderRegistration {
    provider_type: "flaky",
    display_name: "Flaky (test)",
    category: ProviderCategory::Local,
    crate_name: "router-test",
    description: "test provider",
    fields: FLAKY_FIELDS,
    factory: build_flaky,
});

fn build_counted(ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    COUNTED_BUILDS.fetch_add(1, Ordering::SeqCst);
    build_flaky(ctx, config)
}

csal_core::register_provider!(ProviderRegistration {
    provider_type: "counted",
    display_name: "Counted (test)",
    category: ProviderCategory::Local,
    crate_name: "router-test",
    description: "test provider that counts its builds",
    fields: FLAKY_FIELDS,
    factory: build_counted,
});

// The same provider type registered twice, as two crates might.
csal_core::register_provider!(ProviderRegistration {
    provider_type: "dup",
    display_name: "Dup A",
    category: ProviderCategory::Local,
    crate_name: "crate-a",
    description: "",
    fields: FLAKY_FIELDS,
    factory: build_flaky,
});
csal_core::register_provider!(ProviderRegistration {
    provider_type: "dup",
    display_name: "Dup B",
    category: ProviderCategory::Local,
    crate_name: "crate-b",
    description: "",
    fields: FLAKY_FIELDS,
    factory: build_flaky,
});

fn def(id: &str, name: &str, provider: &str, config_json: &str) -> InstanceDefinition {
    let mut def = InstanceDefinition::new(name, provider, serde_json::Value::Null);
    (def.id, def.config_json) = (id.into(), config_json.into());
    def
}

fn fast_layers() -> LayerConfig {
    let mut layers = LayerConfig::default();
    let timeouts = &mut layers.timeouts;
    (timeouts.operation, timeouts.first_byte, timeouts.idle) =
        (Duration::from_secs(2), Duration::from_secs(2), Duration::from_secs(2));
    layers.retry.base_delay = Duration::from_millis(1);
    layers
}

fn offline_reason(router: &StorageRouter, name: &str) -> (ErrorKind, String) {
    let info = router.instances().into_iter().find(|i| i.name == name).expect("instance listed");
    match info.status {
        InstanceStatus::Offline { kind, reason } => (kind, reason),
        other => panic!("{name}: expected offline, got {other:?}"),
    }
}

#[tokio::test]
async fn broken_instances_are_listed_offline_next_to_working_ones() {
    let mut disabled = def("5", "off", "flaky", r#"{"token":"t0ken"}"#);
    disabled.is_enabled = false;
    let router = StorageRouter::new(
        &[
            def("1", "good", "flaky", r#"{"token":"t0ken"}"#),
            def("2", "malformed", "flaky", r#"{"token": "#),
            def("3", "unknown", "no_such_provider", "{}"),
            def("4", "missing-field", "flaky", "{}"),
            disabled,
            def("6", "factory-fails", "flaky", r#"{"token":"hunter2-secret","refuse":true}"#),
            def("7", "duplicated", "dup", r#"{"token":"t0ken"}"#),
        ],
        fast_layers(),
    );
    let infos = router.instances();
    assert_eq!(infos.len(), 7, "no instance may be dropped");
    assert_eq!(infos[0].status, InstanceStatus::Ready);

    let (kind, reason) = offline_reason(&router, "malformed");
    assert_eq!(kind, ErrorKind::InvalidConfig);
    assert!(reason.contains("not valid JSON"), "{reason}");

    let (kind, reason) = offline_reason(&router, "unknown");
    assert_eq!(kind, ErrorKind::InvalidConfig);
    assert!(reason.contains("unknown provider type 'no_such_provider'"), "{reason}");

    let (_, reason) = offline_reason(&router, "missing-field");
    assert!(reason.contains("'token'"), "{reason}");

    let (kind, reason) = offline_reason(&router, "factory-fails");
    assert_eq!(kind, ErrorKind::Auth);
    assert!(!reason.contains("hunter2-secret"), "secret leaked: {reason}");

    let (_, reason) = offline_reason(&router, "duplicated");
    assert!(reason.contains("crate-a") && reason.contains("crate-b"), "{reason}");
    assert!(csal_core::registry_conflicts().contains_key("dup"));

    assert_eq!(router.instances()[4].status, InstanceStatus::Disabled);
    let e = router.stat("off", "x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let e = router.stat("malformed", "x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("failed to load"), "{e}");

    // The working one answers by name and by id.
    assert_eq!(router.stat("good", "a").await.unwrap().size, 4);
    assert_eq!(router.stat("1", "a").await.unwrap().size, 4);
    assert_eq!(router.stat("nope", "a").await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn disabled_rows_are_not_constructed() {
    let mut d = def("x", "never-built", "counted", r#"{"token":"t0ken"}"#);
    d.is_enabled = false;
    let router = StorageRouter::new(&[d.clone()], fast_layers());
    let health = router.health_check("never-built").await.unwrap();
    assert_eq!(health.status, csal_core::HealthStatus::Offline);
    assert_eq!(COUNTED_BUILDS.load(Ordering::SeqCst), 0, "a disabled row was constructed");
    d.is_enabled = true;
    router.reload(&[d]);
    assert_eq!(COUNTED_BUILDS.load(Ordering::SeqCst), 1, "enabling it builds it once");
}

#[tokio::test]
async fn transient_errors_are_retried_and_secrets_scrubbed() {
    // This test's runtime is single-threaded: a thread-local recorder sees every retry.
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let router = StorageRouter::new(
        &[def("1", "flaky2", "flaky", r#"{"token":"tok-SECRET-123","fail_times":2}"#)],
        fast_layers(),
    );
    let meta = router.stat("flaky2", "obj").await.expect("third attempt succeeds");
    assert_eq!(meta.size, 4);
    let retries: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == csal_core::layers::metrics::RETRIES)
        .map(|(.., value)| match value {
            metrics_util::debugging::DebugValue::Counter(n) => n,
            other => panic!("retries is a counter, not {other:?}"),
        })
        .sum();
    assert_eq!(retries, 2);

    let router = StorageRouter::new(
        &[def("1", "flaky5", "flaky", r#"{"token":"tok-SECRET-123","fail_times":5}"#)],
        fast_layers(),
    );
    let e = router.stat("flaky5", "obj").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("tok-SECRET-123"), "secret leaked: {shown}");
    assert!(shown.contains("flaky5") && shown.contains("stat"), "context missing: {shown}");
}

#[tokio::test]
async fn writes_retry_only_replayable_bodies() {
    let config = r#"{"token":"t0ken","fail_times":1}"#;
    let router = StorageRouter::new(&[def("1", "w", "flaky", config)], fast_layers());
    let receipt = router.write("w", ByteStream::from_bytes(&b"abc"[..]), WriteMeta::new("k")).await.unwrap();
    assert_eq!(receipt.size, 3);
    assert_eq!(receipt.checksum.unwrap().value, format!("{:08x}", crc32c::crc32c(b"abc")));

    let router = StorageRouter::new(&[def("1", "w", "flaky", config)], fast_layers());
    let once = ByteStream::new(futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"abc"))]), None);
    let e = router.write("w", once, WriteMeta::new("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient, "a one-shot body must not be retried");
}

#[tokio::test]
async fn list_paths_and_prefixes_that_leave_the_root_are_refused_by_the_layer() {
    // The provider would answer with an empty page: only the layer can refuse.
    let router = StorageRouter::new(&[def("1", "l", "flaky", r#"{"token":"t0ken"}"#)], fast_layers());
    for (path, prefix) in [("", "../../etc/"), ("..", ""), ("cam/../..", ""), ("", "/etc/"), ("a//b", ""), ("", "a\\b")]
    {
        let request = ListRequest::new(path).with_prefix(prefix);
        let e = router.list("l", &request).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "path {path:?} prefix {prefix:?}: {e}");
    }
    for (path, prefix) in [("", ""), ("cam", "2025-"), ("/cam/", ""), ("", "cam/a-")] {
        router.list("l", &ListRequest::new(path).with_prefix(prefix)).await.expect("a clean request is passed on");
    }
}

#[tokio::test]
async fn declared_size_mismatch_is_an_integrity_error() {
    let router = StorageRouter::new(&[def("1", "w", "flaky", r#"{"token":"t0ken"}"#)], fast_layers());
    let lying = ByteStream::new(futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"ab"))]), Some(5));
    let e = router.write("w", lying, WriteMeta::new("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
}

#[tokio::test(start_paused = true)]
async fn hung_calls_time_out() {
    let router = StorageRouter::new(&[def("1", "hung", "flaky", r#"{"token":"t0ken","hang":true}"#)], fast_layers());
    let e = router.stat("hung", "x").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    let report = router.health_check("hung").await.unwrap();
    assert_eq!(report.status, csal_core::HealthStatus::Offline);
}

#[tokio::test]
async fn reload_keeps_unchanged_instances_and_in_flight_handles() {
    let a = def("1", "a", "flaky", r#"{"token":"t0ken"}"#);
    let b = def("2", "b", "flaky", r#"{"token":"t0ken"}"#);
    let router = StorageRouter::new(&[a.clone(), b.clone()], fast_layers());
    let a_before = router.module("a").unwrap();
    let b_held = router.module("b").unwrap();

    let mut a_changed = a.clone();
    a_changed.config_json = r#"{"token":"other"}"#.into();
    let c = def("3", "c", "flaky", r#"{"token":"t0ken"}"#);
    let summary = router.reload(&[a.clone(), c.clone()]);
    assert_eq!(summary.unchanged, 1);
    assert_eq!(summary.added, vec!["c"]);
    assert_eq!(summary.removed, vec!["b"]);
    assert!(Arc::ptr_eq(&a_before, &router.module("a").unwrap()), "unchanged instance was rebuilt");
    assert_eq!(router.stat("b", "x").await.unwrap_err().kind(), ErrorKind::NotFound);
    // The handle taken before the reload still works.
    assert_eq!(b_held.stat("x").await.unwrap().size, 4);

    let summary = router.reload(&[a_changed, c]);
    assert_eq!(summary.changed, vec!["a"]);
    assert!(!Arc::ptr_eq(&a_before, &router.module("a").unwrap()));
}

#[tokio::test]
async fn masked_config_hides_secrets() {
    let router = StorageRouter::new(&[def("1", "m", "flaky", r#"{"token":"very-secret-token"}"#)], fast_layers());
    let info = &router.instances()[0];
    let shown = format!("{:?} {}", info, serde_json::to_string(info).unwrap());
    assert!(!shown.contains("very-secret-token"), "{shown}");
    assert_eq!(info.masked_config.as_ref().unwrap()["token"], json!(csal_core::secret::MASK));
    let def_debug = format!("{:?}", def("1", "m", "flaky", r#"{"token":"very-secret-token"}"#));
    assert!(!def_debug.contains("very-secret-token"));
}

// ------------------------------------------------------------ write outcomes

/// What the `ledger` provider did, per `ledger` name in its config.
#[derive(Default, Debug)]
struct LedgerState {
    /// Objects it holds.
    objects: std::collections::BTreeSet<String>,
    writes: u32,
    deletes: u32,
}

static LEDGERS: std::sync::Mutex<Option<std::collections::HashMap<String, LedgerState>>> = std::sync::Mutex::new(None);

fn ledger<T>(name: &str, f: impl FnOnce(&mut LedgerState) -> T) -> T {
    let mut all = LEDGERS.lock().unwrap();
    f(all.get_or_insert_with(Default::default).entry(name.to_owned()).or_default())
}

/// A provider that keeps its objects in a ledger the test can read, and
/// misbehaves on request after it has taken a write's whole body: reports
/// `lie` bytes more than it stored, takes `finish_ms` to confirm, or never
/// confirms (`hang`); `refuse_delete` makes deletes fail.
struct Ledger {
    cfg: LedgerConfig,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerConfig {
    ledger: String,
    #[serde(default)]
    lie: u64,
    #[serde(default)]
    finish_ms: u64,
    #[serde(default)]
    hang: bool,
    #[serde(default)]
    refuse_delete: bool,
    /// Reads give b"data" with a stored CRC32C that does not match it.
    #[serde(default)]
    wrong_stored_crc: bool,
    /// ... and say the source checks it itself.
    #[serde(default)]
    stored_crc_checked: bool,
}

const LEDGER_FIELDS: &[ConfigField] = &[
    ConfigField::text("ledger", "Ledger name").required(),
    ConfigField::number("lie", "Extra bytes reported"),
    ConfigField::number("finish_ms", "Time to confirm a write"),
    ConfigField::bool("hang", "Never confirm a write"),
    ConfigField::bool("refuse_delete", "Deletes fail"),
    ConfigField::bool("wrong_stored_crc", "Reads carry a wrong stored CRC32C"),
    ConfigField::bool("stored_crc_checked", "The source checks its stored CRC32C"),
];

fn build_ledger(_: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    Ok(Arc::new(Ledger { cfg: csal_core::parse_config("ledger", config)? }))
}

csal_core::register_provider!(ProviderRegistration {
    provider_type: "ledger",
    display_name: "Ledger (test)",
    category: ProviderCategory::Local,
    crate_name: "router-test",
    description: "test provider with an inspectable object ledger",
    fields: LEDGER_FIELDS,
    factory: build_ledger,
});

#[async_trait]
impl StorageModule for Ledger {
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }
    async fn validate(&self) -> Result<()> {
        Ok(())
    }
    async fn write(&self, mut body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        let mut size = 0;
        while let Some(chunk) = body.next().await {
            size += chunk?.len() as u64;
        }
        let id = ledger(&self.cfg.ledger, |l| {
            l.writes += 1;
            let id = format!("{}-{}", meta.key_hint, l.writes);
            l.objects.insert(id.clone());
            id
        });
        if self.cfg.hang {
            futures::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_millis(self.cfg.finish_ms)).await;
        Ok(WriteReceipt { object_id: id, size: size + self.cfg.lie, checksum: None, etag: None, instance: None })
    }
    async fn read(&self, _id: &str, _range: Option<ByteRange>) -> Result<ByteStream> {
        if !self.cfg.wrong_stored_crc {
            return Err(StorageError::not_found("no reads here"));
        }
        let wrong = Checksum::crc32c(crc32c::crc32c(b"data") ^ 1);
        let body = ByteStream::from_bytes(&b"data"[..]);
        Ok(if self.cfg.stored_crc_checked {
            body.with_checked_stored_checksum(wrong)
        } else {
            body.with_stored_checksum(Some(wrong))
        })
    }
    async fn delete(&self, id: &str) -> Result<()> {
        ledger(&self.cfg.ledger, |l| {
            l.deletes += 1;
            if self.cfg.refuse_delete {
                return Err(StorageError::permanent("delete refused"));
            }
            l.objects.remove(id);
            Ok(())
        })
    }
    async fn list(&self, _r: &ListRequest) -> Result<ListPage> {
        Ok(ListPage::default())
    }
    async fn stat(&self, id: &str) -> Result<ObjectMeta> {
        Err(StorageError::not_found(format!("{id}: no stat here")))
    }
    async fn health_check(&self) -> HealthReport {
        HealthReport::ok(Duration::from_millis(1))
    }
}

fn ledger_router(config: serde_json::Value, layers: LayerConfig) -> StorageRouter {
    StorageRouter::new(&[def("1", "l", "ledger", &config.to_string())], layers)
}

/// The layer checks a stored CRC32C unless the source says it checks it
/// itself (local_fs does, on its reader thread): then there is no second
/// pass over the bytes. The stand-in source here lies, so the difference shows.
#[tokio::test]
async fn a_stored_checksum_is_checked_by_the_layer_unless_the_source_checks_it() {
    let router = ledger_router(json!({"ledger": "stored-crc", "wrong_stored_crc": true}), fast_layers());
    let e = router.read("l", "x", None).await.unwrap().collect_limited(100).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    let config = json!({"ledger": "stored-crc", "wrong_stored_crc": true, "stored_crc_checked": true});
    let router = ledger_router(config, fast_layers());
    let data = router.read("l", "x", None).await.unwrap().collect_limited(100).await.unwrap();
    assert_eq!(&data[..], b"data", "the layer hashed the bytes again");
    // A checksum the caller passes is still checked by the layer.
    let other = Checksum::crc32c(crc32c::crc32c(b"data") ^ 2);
    let e = router.read_verified("l", "x", &other).await.unwrap().collect_limited(100).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
}

#[tokio::test]
async fn a_write_that_fails_its_size_check_leaves_no_object_behind() {
    let router = ledger_router(json!({"ledger": "size-check", "lie": 1}), fast_layers());
    let e = router.write("l", ByteStream::from_bytes(&b"abc"[..]), WriteMeta::new("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    ledger("size-check", |l| {
        let attempts = fast_layers().retry.max_attempts;
        assert_eq!(l.writes, attempts, "an integrity failure is retried (under a new id)");
        assert!(l.objects.is_empty(), "objects of failed writes were left behind: {:?}", l.objects);
    });
}

#[tokio::test]
async fn a_failed_write_whose_object_cannot_be_deleted_is_not_retried() {
    let router = ledger_router(json!({"ledger": "no-delete", "lie": 1, "refuse_delete": true}), fast_layers());
    let e = router.write("l", ByteStream::from_bytes(&b"abc"[..]), WriteMeta::new("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    ledger("no-delete", |l| {
        assert_eq!((l.writes, l.deletes), (1, 1), "a retry would add a second bad copy");
    });
}

#[tokio::test(start_paused = true)]
async fn a_slow_last_step_after_the_whole_body_is_not_a_stall() {
    // idle is 2 s; the provider takes 5 s to confirm once it has every byte.
    let router = ledger_router(json!({"ledger": "slow-finish", "finish_ms": 5000}), fast_layers());
    let receipt = router.write("l", ByteStream::from_bytes(&b"abc"[..]), WriteMeta::new("k")).await.unwrap();
    assert_eq!(receipt.size, 3);
    ledger("slow-finish", |l| {
        assert_eq!(l.writes, 1, "the write was retried: a duplicate");
        assert_eq!(l.objects.len(), 1);
    });
}

#[tokio::test(start_paused = true)]
async fn a_write_that_never_confirms_times_out_on_its_own_deadline_without_retry() {
    let mut layers = fast_layers();
    layers.timeouts.completion = Duration::from_secs(30);
    let router = ledger_router(json!({"ledger": "never-confirms", "hang": true}), layers);
    let started = tokio::time::Instant::now();
    let e = router.write("l", ByteStream::from_bytes(&b"abc"[..]), WriteMeta::new("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("not retried"), "{e}");
    assert!(started.elapsed() >= Duration::from_secs(30), "gave up after {:?}", started.elapsed());
    ledger("never-confirms", |l| assert_eq!(l.writes, 1, "retried a write that may have been stored"));
}

#[tokio::test(start_paused = true)]
async fn a_write_whose_body_stops_moving_still_times_out() {
    // One byte, then the body never ends: the no-progress clock must still run.
    let router = ledger_router(json!({"ledger": "stalled"}), fast_layers());
    let body = ByteStream::new(
        futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"a"))]).chain(futures::stream::pending()),
        None,
    );
    let started = tokio::time::Instant::now();
    let e = router.write("l", body, WriteMeta::new("k")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("no progress"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
