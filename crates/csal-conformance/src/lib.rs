//! The shared CSAL conformance suite.
//!
//! [`run`] builds one instance of the target through a real
//! [`StorageRouter`] (so the core layers are in the loop), runs every test
//! in [`TESTS`] against it, cleans up what it wrote and returns a
//! [`Report`]. Every provider runs exactly these tests; only its
//! [`Capabilities`](csal_core::Capabilities) decide what is skipped.
#![warn(missing_docs)]

mod data;
mod report;
mod tests;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use csal_core::{InstanceDefinition, InstanceStatus, LayeredModule, ListRequest, StorageRouter};

pub use report::{Outcome, Report, TestResult};
pub use tests::TESTS;

/// What to test: one provider instance.
#[derive(Clone)]
pub struct Target {
    /// Row name in the matrix, e.g. `s3@moto`.
    pub label: String,
    /// The provider to build the instance with.
    pub provider_type: String,
    /// The instance config (checked against the provider's spec like any row).
    pub config: serde_json::Value,
    /// Size of the "large" object; set it above the provider's multipart /
    /// chunked-upload threshold so that path is exercised.
    pub large_size: usize,
    /// Objects written for the pagination test (at least 1,000 by default).
    pub list_objects: usize,
    /// A config whose credentials are wrong: errors must be `Auth` and must
    /// not show the secret. `None` for providers without credentials.
    pub bad_credentials: Option<serde_json::Value>,
    /// Per-test time limit.
    pub test_timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("label", &self.label).field("provider_type", &self.provider_type).finish()
    }
}

impl Target {
    /// A target with the default sizes: a 12 MiB large object, 1,100 objects to list, 300 s per test.
    pub fn new(label: impl Into<String>, provider_type: impl Into<String>, config: serde_json::Value) -> Self {
        Target {
            label: label.into(),
            provider_type: provider_type.into(),
            config,
            large_size: 12 * 1024 * 1024 + 12_345,
            list_objects: 1_100,
            bad_credentials: None,
            test_timeout: Duration::from_secs(300),
        }
    }
    /// See [`Target::large_size`](#structfield.large_size).
    pub fn large_size(mut self, bytes: usize) -> Self {
        self.large_size = bytes;
        self
    }
    /// See [`Target::list_objects`](#structfield.list_objects).
    pub fn list_objects(mut self, count: usize) -> Self {
        self.list_objects = count;
        self
    }
    /// See [`Target::bad_credentials`](#structfield.bad_credentials).
    pub fn bad_credentials(mut self, config: serde_json::Value) -> Self {
        self.bad_credentials = Some(config);
        self
    }
    /// See [`Target::test_timeout`](#structfield.test_timeout).
    pub fn test_timeout(mut self, limit: Duration) -> Self {
        self.test_timeout = limit;
        self
    }
}

/// Shared state of one run.
pub struct Ctx {
    /// What is being tested.
    pub target: Target,
    /// The instance, through the router's layers.
    pub module: Arc<LayeredModule>,
    /// Every object this run writes lives under this folder.
    pub run_dir: String,
}

/// Run the whole suite against `target`.
///
/// With `CSAL_CONFORMANCE_PROVIDERS=s3,gcs` set (by `cargo xtask conformance
/// --provider ...`), targets of other provider crates return an empty report
/// at once.
pub async fn run(target: Target) -> Report {
    if !is_selected(&target.provider_type) {
        eprintln!("conformance: {} not selected by CSAL_CONFORMANCE_PROVIDERS", target.label);
        return Report::new(&target.label, &target.provider_type);
    }
    run_filtered(target, |_| true).await
}

/// Whether `provider_type` (or another type of the same crate) is selected.
pub fn is_selected(provider_type: &str) -> bool {
    let Ok(list) = std::env::var("CSAL_CONFORMANCE_PROVIDERS") else { return true };
    let crate_of = |p: &str| csal_core::find_provider(p).map(|r| r.crate_name).ok();
    list.split(',')
        .map(str::trim)
        .any(|want| want == provider_type || (crate_of(want).is_some() && crate_of(want) == crate_of(provider_type)))
}

/// Run the tests whose name passes `filter` (e.g. from `CSAL_CONFORMANCE_ONLY`).
pub async fn run_filtered(target: Target, filter: impl Fn(&str) -> bool) -> Report {
    let only = std::env::var("CSAL_CONFORMANCE_ONLY").ok();
    let wanted = |name: &str| filter(name) && only.as_deref().is_none_or(|o| o.split(',').any(|w| name.contains(w)));
    let definition = InstanceDefinition::new("conformance", &target.provider_type, target.config.clone());
    let router = StorageRouter::from_definitions(&[definition]);
    let mut report = Report::new(&target.label, &target.provider_type);
    let module = match router.module("conformance") {
        Ok(m) => m,
        Err(e) => {
            let reason = match router.instances().first().map(|i| i.status.clone()) {
                Some(InstanceStatus::Offline { reason, .. }) => reason,
                _ => e.to_string(),
            };
            for (name, _) in TESTS.iter().filter(|(n, _)| wanted(n)) {
                report.push(name, Outcome::Fail(format!("instance did not load: {reason}")), Duration::ZERO);
            }
            report.finish();
            return report;
        }
    };
    let ctx =
        Ctx { run_dir: format!("csal-conformance/{}", ulid::Ulid::new().to_string().to_lowercase()), target, module };
    for (name, test) in TESTS.iter().filter(|(n, _)| wanted(n)) {
        let started = std::time::Instant::now();
        let outcome = match tokio::time::timeout(ctx.target.test_timeout, test(&ctx)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Fail(format!("did not finish within {:?}", ctx.target.test_timeout)),
        };
        report.push(name, outcome, started.elapsed());
    }
    cleanup(&ctx).await;
    report.finish();
    report
}

/// Delete everything this run wrote (best effort; failures are printed).
async fn cleanup(ctx: &Ctx) {
    let mut token = None;
    let mut ids = Vec::new();
    loop {
        let req = ListRequest::new(ctx.run_dir.clone()).with_limit(1000).with_continuation(token.take());
        match csal_core::StorageModule::list(ctx.module.as_ref(), &req).await {
            Ok(page) => {
                ids.extend(page.objects.into_iter().map(|o| o.object_id));
                match page.next_page {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            Err(e) => {
                eprintln!("conformance cleanup: list failed: {e}");
                break;
            }
        }
    }
    let module = ctx.module.clone();
    let results = futures::future::join_all(ids.chunks(64).map(|batch| {
        let module = module.clone();
        let batch = batch.to_vec();
        async move {
            for id in batch {
                if let Err(e) = csal_core::StorageModule::delete(module.as_ref(), &id).await {
                    eprintln!("conformance cleanup: delete {id}: {e}");
                }
            }
        }
    }))
    .await;
    drop(results);
}

/// Read an endpoint (or any setting) that xtask exports for a test server.
///
/// Targets not selected by `CSAL_CONFORMANCE_PROVIDERS` get `None` quietly.
/// Missing: in CI (`CI` set) this panics, because a test that passes without
/// its server proves nothing; locally it writes a report with every test
/// skipped, prints why, and returns `None`.
pub fn require_env(var: &str, label: &str, provider_type: &str) -> Option<String> {
    if !is_selected(provider_type) {
        // `cargo xtask conformance --provider X` did not ask for this one.
        return None;
    }
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let reason =
                format!("{var} is not set: start the server with `cargo xtask conformance` or `cargo xtask test`");
            if std::env::var_os("CI").is_some() {
                panic!("{label}: {reason} (required in CI)");
            }
            eprintln!("SKIP {label}: {reason}");
            Report::skipped(label, provider_type, &reason).finish();
            None
        }
    }
}
