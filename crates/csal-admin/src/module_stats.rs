//! The admin's recorder for csal-core's layer metrics (the `metrics`
//! facade): one [`metrics::Recorder`] that feeds both the Prometheus
//! exporter (rendered into the `/metrics` route, no listener of its own)
//! and per-module totals with a one-hour, per-minute history (the module
//! page's table and charts, the JSON API). Everything is keyed by the
//! module's name, so a rebuilt module (config edit, token refresh) keeps
//! its numbers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use csal_core::layers::metrics::{
    ERRORS, LATENCY_BUCKETS_SECONDS, OPERATION_DURATION, OPERATION_ERRORS, OPERATIONS, READ_BYTES, RETRIES,
    WRITTEN_BYTES,
};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Minutes of history kept per module (the charts' span).
pub const HISTORY_MINUTES: u64 = 60;

/// The metrics this admin server shows. Clones share everything.
#[derive(Clone)]
pub struct AdminMetrics {
    prometheus: PrometheusHandle,
    modules: Arc<ModuleStats>,
}

impl AdminMetrics {
    /// The process's recorder, installed as the `metrics` global recorder
    /// on first use. When the embedding application installed its own
    /// recorder first, that one gets the layer metrics and this admin shows
    /// only the scrape-time values (module status, capacity, recording).
    pub fn global() -> AdminMetrics {
        static GLOBAL: OnceLock<AdminMetrics> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let (recorder, metrics) = AdminMetrics::recorder();
                if metrics::set_global_recorder(recorder).is_ok() {
                    csal_core::layers::metrics::describe();
                } else {
                    tracing::warn!(
                        "another metrics recorder is installed: /metrics and the module pages show no operation metrics"
                    );
                }
                metrics
            })
            .clone()
    }

    /// A recorder (to install, or to put into an application's fan-out)
    /// and the view of what it receives.
    pub fn recorder() -> (impl Recorder + Sync + 'static, AdminMetrics) {
        let prometheus = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(OPERATION_DURATION.to_owned()), &LATENCY_BUCKETS_SECONDS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let modules = Arc::new(ModuleStats::default());
        let metrics = AdminMetrics { prometheus: prometheus.handle(), modules: modules.clone() };
        let fanout = metrics_util::layers::FanoutBuilder::default()
            .add_recorder(prometheus)
            .add_recorder(ModuleRecorder(modules))
            .build();
        (fanout, metrics)
    }

    /// The Prometheus exposition text of the layer metrics.
    pub fn render_prometheus(&self) -> String {
        self.prometheus.render()
    }

    /// Fold buffered histogram samples (bounded memory between scrapes);
    /// the server runs this every few seconds.
    pub fn run_upkeep(&self) {
        self.prometheus.run_upkeep();
    }

    /// A module's totals (`None`: no operation recorded under that name).
    pub fn snapshot(&self, module: &str) -> Option<MetricsSnapshot> {
        self.modules.get(module).map(|m| m.lock().expect("stats lock").snapshot())
    }

    /// A module's last hour, one entry per minute, oldest first (minutes
    /// without operations included as zeros).
    pub fn history(&self, module: &str) -> Vec<MinuteStats> {
        let now = now_minute();
        let first = now + 1 - HISTORY_MINUTES;
        let kept = self.modules.get(module).map(|m| m.lock().expect("stats lock").history.clone()).unwrap_or_default();
        (first..=now)
            .map(|minute| kept.iter().find(|m| m.minute == minute).cloned().unwrap_or(MinuteStats::at(minute)))
            .collect()
    }
}

/// Per-module stats, by module name.
#[derive(Default)]
struct ModuleStats {
    modules: Mutex<HashMap<String, Arc<Mutex<Stats>>>>,
}

impl ModuleStats {
    fn get(&self, module: &str) -> Option<Arc<Mutex<Stats>>> {
        self.modules.lock().expect("stats lock").get(module).cloned()
    }
    fn entry(&self, module: &str) -> Arc<Mutex<Stats>> {
        self.modules.lock().expect("stats lock").entry(module.to_owned()).or_default().clone()
    }
}

const BUCKETS: usize = LATENCY_BUCKETS_SECONDS.len() + 1;

#[derive(Default)]
struct Stats {
    operations: BTreeMap<String, OpTotals>,
    errors_by_kind: BTreeMap<String, u64>,
    written: u64,
    read: u64,
    retries: u64,
    history: VecDeque<MinuteStats>,
}

#[derive(Default)]
struct OpTotals {
    calls: u64,
    errors: u64,
    latency_sum_s: f64,
    buckets: [u64; BUCKETS],
}

/// One minute of a module's operations.
#[derive(Debug, Clone, Default)]
pub struct MinuteStats {
    /// Minutes since the Unix epoch.
    pub minute: u64,
    /// Operations that finished in this minute, with their latencies.
    pub operations: u64,
    /// Total latency of those operations, in seconds (for the mean).
    pub latency_sum_s: f64,
    /// Counts per bucket of `LATENCY_BUCKETS_SECONDS` plus +Inf.
    pub buckets: [u64; BUCKETS],
    /// Bytes written in this minute.
    pub written_bytes: u64,
    /// Bytes read in this minute.
    pub read_bytes: u64,
}

impl MinuteStats {
    fn at(minute: u64) -> Self {
        MinuteStats { minute, ..Default::default() }
    }
    /// Mean latency in seconds (`None` without operations).
    pub fn mean_s(&self) -> Option<f64> {
        (self.operations > 0).then(|| self.latency_sum_s / self.operations as f64)
    }
    /// Upper bound of the bucket holding the 99th percentile, in seconds.
    pub fn p99_s(&self) -> Option<f64> {
        (self.operations > 0).then(|| quantile(&self.buckets, 0.99))
    }
}

impl Stats {
    /// This minute's entry, dropping minutes older than the history.
    fn minute(&mut self) -> &mut MinuteStats {
        let now = now_minute();
        while self.history.front().is_some_and(|m| m.minute + HISTORY_MINUTES <= now) {
            self.history.pop_front();
        }
        if self.history.back().is_none_or(|m| m.minute != now) {
            self.history.push_back(MinuteStats::at(now));
        }
        self.history.back_mut().expect("just pushed")
    }

    fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            operations: self
                .operations
                .iter()
                .map(|(op, t)| {
                    let stats = OperationStats {
                        calls: t.calls,
                        errors: t.errors,
                        latency_sum_ms: t.latency_sum_s * 1000.0,
                        p50_ms: quantile(&t.buckets, 0.50) * 1000.0,
                        p99_ms: quantile(&t.buckets, 0.99) * 1000.0,
                        buckets: t.buckets.to_vec(),
                    };
                    (op.clone(), stats)
                })
                .collect(),
            errors_by_kind: self.errors_by_kind.clone(),
            bytes_written: self.written,
            bytes_read: self.read,
            retries: self.retries,
        }
    }
}

fn now_minute() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() / 60).unwrap_or(0)
}

/// Upper bound of the bucket holding quantile `q`, in seconds (what
/// Prometheus' histogram_quantile estimates, without interpolation).
fn quantile(buckets: &[u64; BUCKETS], q: f64) -> f64 {
    let total: u64 = buckets.iter().sum();
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return LATENCY_BUCKETS_SECONDS.get(i).copied().unwrap_or(f64::INFINITY);
        }
    }
    f64::INFINITY
}

fn bucket_of(seconds: f64) -> usize {
    LATENCY_BUCKETS_SECONDS.iter().position(|&b| seconds <= b).unwrap_or(LATENCY_BUCKETS_SECONDS.len())
}

/// A point-in-time copy of a module's totals (the JSON API's shape).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MetricsSnapshot {
    /// Per operation, by its snake_case name; operations never called are absent.
    pub operations: BTreeMap<String, OperationStats>,
    /// By error kind (`not_found`, `timeout`, ...).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Bytes written since the server started.
    pub bytes_written: u64,
    /// Bytes read since the server started.
    pub bytes_read: u64,
    /// Retries made by the retry layer.
    pub retries: u64,
}

/// Calls, errors and latency of one operation of one module.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OperationStats {
    /// Calls finished.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Total latency, for the mean.
    pub latency_sum_ms: f64,
    /// Median latency, as the upper bound of its bucket.
    pub p50_ms: f64,
    /// 99th percentile latency, as the upper bound of its bucket.
    pub p99_ms: f64,
    /// Counts per latency bucket (csal-core's `LATENCY_BUCKETS_SECONDS`, then +Inf; not cumulative).
    pub buckets: Vec<u64>,
}

/// Which number of a module a registered series adds to.
enum Field {
    Calls(String),
    OperationErrors(String),
    ErrorKind(String),
    Written,
    Read,
    Retries,
    Latency(String),
}

/// A series of one module, as the facade's handle.
struct Series {
    stats: Arc<Mutex<Stats>>,
    field: Field,
}

impl CounterFn for Series {
    fn increment(&self, n: u64) {
        let mut s = self.stats.lock().expect("stats lock");
        match &self.field {
            Field::Calls(op) => s.operations.entry(op.clone()).or_default().calls += n,
            Field::OperationErrors(op) => s.operations.entry(op.clone()).or_default().errors += n,
            Field::ErrorKind(kind) => *s.errors_by_kind.entry(kind.clone()).or_default() += n,
            Field::Retries => s.retries += n,
            Field::Written => {
                s.written += n;
                s.minute().written_bytes += n;
            }
            Field::Read => {
                s.read += n;
                s.minute().read_bytes += n;
            }
            Field::Latency(_) => {}
        }
    }
    fn absolute(&self, _value: u64) {}
}

impl HistogramFn for Series {
    fn record(&self, seconds: f64) {
        let Field::Latency(op) = &self.field else { return };
        let bucket = bucket_of(seconds);
        let mut s = self.stats.lock().expect("stats lock");
        let totals = s.operations.entry(op.clone()).or_default();
        totals.latency_sum_s += seconds;
        totals.buckets[bucket] += 1;
        let minute = s.minute();
        minute.operations += 1;
        minute.latency_sum_s += seconds;
        minute.buckets[bucket] += 1;
    }
}

/// The recorder half that keeps [`ModuleStats`]; series other than the
/// layer's (and those without a `module` label) are ignored here.
struct ModuleRecorder(Arc<ModuleStats>);

impl ModuleRecorder {
    fn series(&self, key: &Key) -> Option<Arc<Series>> {
        let label = |name: &str| key.labels().find(|l| l.key() == name).map(|l| l.value().to_owned());
        let op = || label("operation").unwrap_or_default();
        let field = match key.name() {
            OPERATIONS => Field::Calls(op()),
            OPERATION_ERRORS => Field::OperationErrors(op()),
            ERRORS => Field::ErrorKind(label("kind").unwrap_or_default()),
            WRITTEN_BYTES => Field::Written,
            READ_BYTES => Field::Read,
            RETRIES => Field::Retries,
            OPERATION_DURATION => Field::Latency(op()),
            _ => return None,
        };
        Some(Arc::new(Series { stats: self.0.entry(&label("module")?), field }))
    }
}

impl Recorder for ModuleRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.series(key).map(Counter::from_arc).unwrap_or_else(Counter::noop)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.series(key).map(Histogram::from_arc).unwrap_or_else(Histogram::noop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_quantiles_and_this_minute() {
        let (recorder, m) = AdminMetrics::recorder();
        metrics::with_local_recorder(&recorder, || {
            let labels = [("module", "disk"), ("provider", "local_fs"), ("operation", "stat")];
            for _ in 0..99 {
                metrics::counter!(OPERATIONS, &labels).increment(1);
                metrics::histogram!(OPERATION_DURATION, &labels).record(0.003);
            }
            metrics::counter!(OPERATIONS, &labels).increment(1);
            metrics::histogram!(OPERATION_DURATION, &labels).record(0.7);
            metrics::counter!(OPERATION_ERRORS, &labels).increment(1);
            metrics::counter!(ERRORS, "module" => "disk", "kind" => "timeout").increment(1);
            metrics::counter!(WRITTEN_BYTES, "module" => "disk").increment(10);
            metrics::counter!("unrelated_total").increment(1);
        });
        let s = m.snapshot("disk").unwrap();
        let stat = &s.operations["stat"];
        assert_eq!((stat.calls, stat.errors), (100, 1));
        assert_eq!(stat.p50_ms, 5.0);
        assert_eq!(stat.p99_ms, 5.0);
        assert_eq!(s.errors_by_kind["timeout"], 1);
        assert_eq!(s.bytes_written, 10);
        assert!(m.snapshot("other").is_none());
        let history = m.history("disk");
        assert_eq!(history.len(), HISTORY_MINUTES as usize);
        // (Summed: the records may straddle a minute boundary.)
        assert_eq!(history.iter().map(|m| m.operations).sum::<u64>(), 100);
        assert_eq!(history.iter().map(|m| m.written_bytes).sum::<u64>(), 10);
        assert!(history.iter().filter_map(MinuteStats::p99_s).all(|p99| p99 <= 1.0));
        assert!(m.render_prometheus().contains("csal_operations_total"));
    }
}
