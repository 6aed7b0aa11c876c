//! Counters of one node's gateway, for `/metrics` and the Recordings page.
//! Counters count since the process started; the spool gauges are read
//! live.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::store::Spool;

#[derive(Default)]
pub(crate) struct Stats {
    ingest_bytes: AtomicU64,
    ingest_segments: AtomicU64,
    ingest_duplicates: AtomicU64,
    ingest_refused: Mutex<BTreeMap<&'static str, u64>>,
    targets: Mutex<BTreeMap<String, TargetStats>>,
}

/// Deliveries to one target since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetStats {
    /// Copies stored there.
    pub delivered: u64,
    /// Bytes of those copies.
    pub delivered_bytes: u64,
    /// Delivery attempts that failed.
    pub failures: u64,
    /// Copies found on the target after a crash and adopted, not rewritten.
    pub adopted: u64,
    /// The last failure's message.
    pub last_error: Option<String>,
}

/// A snapshot of [`Stats`] plus the spool gauges.
///
/// `#[non_exhaustive]`: more gauges will come; only csal-spool builds it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct GatewayStats {
    /// Seconds since the gateway started.
    pub uptime_secs: u64,
    /// Bytes in the spool now.
    pub spool_bytes: u64,
    /// Segments in the spool now.
    pub spool_segments: u64,
    /// The spool's cap.
    pub spool_max_bytes: u64,
    /// Bytes of segments accepted since start.
    pub ingest_bytes: u64,
    /// Segments accepted since start.
    pub ingest_segments: u64,
    /// Identical re-uploads answered without storing anything.
    pub ingest_duplicates: u64,
    /// Uploads refused, by reason (`spool_full`, `invalid`, `conflict`, ...).
    pub ingest_refused: BTreeMap<String, u64>,
    /// Delivery statistics per target.
    pub targets: BTreeMap<String, TargetStats>,
}

impl Stats {
    pub(crate) fn ingested(&self, bytes: u64) {
        self.ingest_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.ingest_segments.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn duplicate(&self) {
        self.ingest_duplicates.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, reason: &'static str) {
        *self.ingest_refused.lock().unwrap_or_else(|p| p.into_inner()).entry(reason).or_default() += 1;
    }

    fn target(&self, target: &str, f: impl FnOnce(&mut TargetStats)) {
        let mut map = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        f(map.entry(target.to_owned()).or_default());
    }

    pub(crate) fn delivered(&self, target: &str, bytes: u64, adopted: bool) {
        self.target(target, |t| {
            t.delivered += 1;
            t.delivered_bytes += bytes;
            if adopted {
                t.adopted += 1;
            }
        });
    }

    pub(crate) fn failed(&self, target: &str, error: &str) {
        self.target(target, |t| {
            t.failures += 1;
            t.last_error = Some(error.chars().take(300).collect());
        });
    }

    pub(crate) fn snapshot(&self, spool: &Spool, uptime: Duration) -> GatewayStats {
        GatewayStats {
            uptime_secs: uptime.as_secs(),
            spool_bytes: spool.used(),
            spool_segments: spool.segment_count(),
            spool_max_bytes: spool.max_bytes(),
            ingest_bytes: self.ingest_bytes.load(Ordering::Relaxed),
            ingest_segments: self.ingest_segments.load(Ordering::Relaxed),
            ingest_duplicates: self.ingest_duplicates.load(Ordering::Relaxed),
            ingest_refused: self
                .ingest_refused
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            targets: self.targets.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}
