//! Per-instance metrics: operations, bytes, errors by kind and a latency
//! histogram per operation. Lock-free counters; the admin UI and the
//! Prometheus endpoint read [`InstanceMetrics::snapshot`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{ErrorKind, Operation};

/// Upper bounds of the latency buckets, in milliseconds (last bucket = +Inf).
pub const LATENCY_BUCKETS_MS: [f64; 14] =
    [1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0];

const ERROR_KINDS: [ErrorKind; 15] = [
    ErrorKind::Auth,
    ErrorKind::Transient,
    ErrorKind::Timeout,
    ErrorKind::RateLimited,
    ErrorKind::Integrity,
    ErrorKind::NotFound,
    ErrorKind::AlreadyExists,
    ErrorKind::InvalidInput,
    ErrorKind::InvalidConfig,
    ErrorKind::Unsupported,
    ErrorKind::RangeNotSatisfiable,
    ErrorKind::QuotaExceeded,
    ErrorKind::Locked,
    ErrorKind::Unavailable,
    ErrorKind::Permanent,
];

#[derive(Default)]
struct OpCounters {
    calls: AtomicU64,
    errors: AtomicU64,
    latency_sum_us: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
}

/// Counters of one instance.
#[derive(Default)]
pub struct InstanceMetrics {
    ops: [OpCounters; Operation::ALL.len()],
    errors_by_kind: [AtomicU64; ERROR_KINDS.len()],
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
    retries: AtomicU64,
}

impl InstanceMetrics {
    /// Count one finished call of `op`, its latency and its error kind, if it failed.
    pub fn record(&self, op: Operation, elapsed: Duration, error: Option<ErrorKind>) {
        let c = &self.ops[op_index(op)];
        c.calls.fetch_add(1, Ordering::Relaxed);
        c.latency_sum_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let ms = elapsed.as_secs_f64() * 1000.0;
        let bucket = LATENCY_BUCKETS_MS.iter().position(|&b| ms <= b).unwrap_or(LATENCY_BUCKETS_MS.len());
        c.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        if let Some(kind) = error {
            c.errors.fetch_add(1, Ordering::Relaxed);
            let k = ERROR_KINDS.iter().position(|&e| e == kind).expect("every kind is listed");
            self.errors_by_kind[k].fetch_add(1, Ordering::Relaxed);
        }
    }
    /// Count bytes a write took.
    pub fn add_bytes_written(&self, n: u64) {
        self.bytes_written.fetch_add(n, Ordering::Relaxed);
    }
    /// Count bytes a read returned.
    pub fn add_bytes_read(&self, n: u64) {
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
    }
    /// Count one retry of the retry layer.
    pub fn add_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy of the counters (each read atomically).
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut operations = BTreeMap::new();
        for op in Operation::ALL {
            let c = &self.ops[op_index(op)];
            let calls = c.calls.load(Ordering::Relaxed);
            if calls == 0 {
                continue;
            }
            let buckets: Vec<u64> = c.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
            operations.insert(
                op.as_str(),
                OperationStats {
                    calls,
                    errors: c.errors.load(Ordering::Relaxed),
                    latency_sum_ms: c.latency_sum_us.load(Ordering::Relaxed) as f64 / 1000.0,
                    p50_ms: quantile(&buckets, 0.50),
                    p99_ms: quantile(&buckets, 0.99),
                    buckets,
                },
            );
        }
        let errors_by_kind = ERROR_KINDS
            .iter()
            .zip(&self.errors_by_kind)
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        MetricsSnapshot {
            operations,
            errors_by_kind,
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

fn op_index(op: Operation) -> usize {
    Operation::ALL.iter().position(|&o| o == op).expect("every operation is listed")
}

/// Upper bound of the bucket holding quantile `q` (what Prometheus'
/// histogram_quantile would estimate, without interpolation).
fn quantile(buckets: &[u64], q: f64) -> f64 {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return LATENCY_BUCKETS_MS.get(i).copied().unwrap_or(f64::INFINITY);
        }
    }
    f64::INFINITY
}

/// A point-in-time copy of an instance's counters.
///
/// `#[non_exhaustive]`: more counters will come; only csal-core builds it.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Per operation, by [`Operation::as_str`] name; operations never called are absent.
    pub operations: BTreeMap<&'static str, OperationStats>,
    /// Failed calls by kind.
    pub errors_by_kind: BTreeMap<ErrorKind, u64>,
    /// Bytes taken by writes.
    pub bytes_written: u64,
    /// Bytes returned by reads.
    pub bytes_read: u64,
    /// Retries made by the retry layer.
    pub retries: u64,
}

/// Calls, errors and latency of one operation of one instance.
///
/// `#[non_exhaustive]`: more quantiles may come; only csal-core builds it.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[non_exhaustive]
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
    /// Counts per bucket of [`LATENCY_BUCKETS_MS`] plus a last +Inf bucket (not cumulative).
    pub buckets: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_errors_and_quantiles() {
        let m = InstanceMetrics::default();
        for _ in 0..99 {
            m.record(Operation::Stat, Duration::from_millis(3), None);
        }
        m.record(Operation::Stat, Duration::from_millis(700), Some(ErrorKind::Timeout));
        m.add_bytes_written(10);
        let s = m.snapshot();
        let stat = &s.operations["stat"];
        assert_eq!((stat.calls, stat.errors), (100, 1));
        assert_eq!(stat.p50_ms, 5.0);
        assert_eq!(stat.p99_ms, 5.0);
        assert_eq!(s.errors_by_kind[&ErrorKind::Timeout], 1);
        assert_eq!(s.bytes_written, 10);
        assert!(!s.operations.contains_key("read"));
    }
}
