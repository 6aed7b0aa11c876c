//! An application embedding csal-core gets the layer's metrics in its own
//! recorder (here metrics-util's `DebuggingRecorder`, installed as the
//! process's global recorder as an application would), keyed by module name
//! so that a rebuilt module's series continue.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use csal_core::layers::metrics as names;
use csal_core::{ByteStream, ErrorKind, InstanceDefinition, StorageRouter, WriteMeta};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

csal_core::link_providers!(csal_memory);

/// What the global recorder received so far, per series: counters summed,
/// histogram samples counted (a snapshot drains the recorder, so the
/// snapshots of every test in this process accumulate here).
type Series = HashMap<SeriesKey, (u64, usize)>;
/// Kind, name and labels of a series.
type SeriesKey = (MetricKind, String, Vec<(String, String)>);

fn recorded() -> std::sync::MutexGuard<'static, Series> {
    static STATE: OnceLock<(Snapshotter, Mutex<Series>)> = OnceLock::new();
    let (snapshotter, series) = STATE.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("no other recorder in this test process");
        (snapshotter, Mutex::new(HashMap::new()))
    });
    let mut series = series.lock().unwrap();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let kind = key.kind();
        let key = key.key();
        let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
        let entry = series.entry((kind, key.name().to_owned(), labels)).or_default();
        match value {
            DebugValue::Counter(n) => entry.0 += n,
            DebugValue::Histogram(samples) => entry.1 += samples.len(),
            DebugValue::Gauge(_) => {}
        }
    }
    series
}

/// The series of `module`: name, labels other than module/provider, and value.
fn series(module: &str) -> Vec<(SeriesKey, (u64, usize))> {
    let mut out = Vec::new();
    for ((kind, name, labels), value) in recorded().iter() {
        if !labels.iter().any(|(k, v)| k == "module" && v == module) {
            continue;
        }
        assert!(labels.iter().any(|(k, v)| k == "provider" && v == "memory"), "{labels:?}");
        assert!(!labels.iter().any(|(k, _)| k == "instance"), "the label is `module`: {labels:?}");
        let rest = labels.iter().filter(|(k, _)| k != "module" && k != "provider").cloned().collect();
        out.push(((*kind, name.clone(), rest), *value));
    }
    out
}

fn find(module: &str, kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> (u64, usize) {
    let want: Vec<(String, String)> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    series(module)
        .into_iter()
        .find(|((k, n, l), _)| *k == kind && n == name && *l == want)
        .map(|s| s.1)
        .unwrap_or_default()
}

fn counter(module: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    find(module, MetricKind::Counter, name, labels).0
}

fn latencies(module: &str, operation: &str) -> usize {
    find(module, MetricKind::Histogram, names::OPERATION_DURATION, &[("operation", operation)]).1
}

fn memory(name: &str, max_bytes: Option<u64>) -> InstanceDefinition {
    InstanceDefinition::new(name, "memory", serde_json::json!({ "max_bytes": max_bytes }))
}

#[tokio::test]
async fn core_records_writes_reads_and_failures_in_the_applications_recorder() {
    drop(recorded());
    let router = StorageRouter::from_definitions(&[memory("embed", None)]);
    let receipt = router.write("embed", ByteStream::from_bytes("12345"), WriteMeta::new("a.ts")).await.unwrap();
    let body = router.read("embed", &receipt.object_id, None).await.unwrap().collect_limited(1024).await.unwrap();
    assert_eq!(&body[..], b"12345");
    let e = router.stat("embed", "missing.ts").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    assert_eq!(counter("embed", names::OPERATIONS, &[("operation", "write")]), 1);
    assert_eq!(counter("embed", names::OPERATIONS, &[("operation", "read")]), 1);
    assert_eq!(counter("embed", names::OPERATIONS, &[("operation", "stat")]), 1);
    assert_eq!(counter("embed", names::WRITTEN_BYTES, &[]), 5);
    assert_eq!(counter("embed", names::READ_BYTES, &[]), 5);
    assert_eq!(counter("embed", names::OPERATION_ERRORS, &[("operation", "stat")]), 1);
    assert_eq!(counter("embed", names::OPERATION_ERRORS, &[("operation", "write")]), 0);
    assert_eq!(counter("embed", names::ERRORS, &[("kind", "not_found")]), 1);
    assert_eq!(latencies("embed", "write"), 1);
    assert_eq!(latencies("embed", "stat"), 1);
    for ((_, name, _), _) in series("embed") {
        assert!(name.starts_with("csal_"), "{name}");
        assert!(
            name.ends_with("_total") || name.ends_with("_seconds") || name.ends_with("_bytes"),
            "not a Prometheus-style name: {name}"
        );
    }
}

#[tokio::test]
async fn a_rebuilt_module_continues_its_counters() {
    drop(recorded());
    let router = StorageRouter::from_definitions(&[memory("rebuilt", None)]);
    let before = router.module("rebuilt").unwrap();
    router.write("rebuilt", ByteStream::from_bytes("abc"), WriteMeta::new("a.ts")).await.unwrap();

    // A config edit (as a token refresh saves one): the router builds a new module.
    let summary = router.reload(&[memory("rebuilt", Some(1 << 20))]);
    assert_eq!(summary.changed, ["rebuilt"], "{summary:?}");
    assert!(!std::sync::Arc::ptr_eq(&before, &router.module("rebuilt").unwrap()), "the module was rebuilt");
    router.write("rebuilt", ByteStream::from_bytes("defg"), WriteMeta::new("b.ts")).await.unwrap();

    assert_eq!(counter("rebuilt", names::OPERATIONS, &[("operation", "write")]), 2);
    assert_eq!(counter("rebuilt", names::WRITTEN_BYTES, &[]), 7);
}
