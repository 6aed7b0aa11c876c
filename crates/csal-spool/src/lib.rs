//! # csal-spool
//!
//! The recording path of CSAL, without HTTP: a [`Gateway`] takes segments
//! from recorders, keeps them durably in a local spool, delivers them to
//! each camera's storage targets (fail-over in order, `copies` distinct
//! targets), indexes them by camera and time in the catalog, and plays them
//! back from the spool or from whichever target holds them.
//!
//! The promise: a segment the gateway acknowledged (its bytes fsynced in
//! the spool and its row committed in the catalog) is never lost. It stays
//! in the spool until the catalog records enough copies on targets; the
//! delivery journal (`segment_copies`) says, for every target, whether a
//! write is under way, stored (and as which object) or failed, so after a
//! crash the node resumes where it was and never stores a segment twice on
//! one target (an attempt that was in flight is first looked for on the
//! target and adopted if it completed).
//!
//! ```no_run
//! # async fn run(catalog: csal_catalog::Catalog) -> csal_core::Result<()> {
//! use csal_spool::{Gateway, GatewayConfig, IngestRequest, SpoolConfig};
//! let spool = SpoolConfig::new("./csal-spool", 20 << 30);
//! let gateway = Gateway::start(catalog, GatewayConfig::new(spool)).await?;
//! let body = csal_core::ByteStream::from_bytes(&b"...segment bytes..."[..]);
//! let outcome = gateway.ingest(IngestRequest::new("cam1", "seg00001.ts"), body).await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod capacity;
mod delivery;
pub mod fsck;
pub mod hls;
pub mod holds;
mod ingest;
pub mod names;
mod playback;
pub mod retention;
mod stats;
mod store;
mod tiering;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use csal_catalog::{Catalog, SegmentRecord};
use csal_core::Result;
use tokio::sync::{Notify, Semaphore, broadcast, watch};

pub use ingest::{IngestError, IngestOutcome, IngestRequest, PlaylistOutcome};
pub use playback::SegmentBody;
pub use stats::{GatewayStats, TargetStats};
pub use store::SpoolConfig;

use store::Spool;

/// Knobs of a [`Gateway`].
///
/// `#[non_exhaustive]`: the gateway grows knobs; start from
/// [`GatewayConfig::new`] and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Where segments wait for delivery.
    pub spool: SpoolConfig,
    /// Largest segment accepted (413 above it).
    pub max_segment_bytes: u64,
    /// An upload that sends nothing for this long is abandoned.
    pub body_idle_timeout: Duration,
    /// Segments delivered at once.
    pub deliveries: usize,
    /// Writes to one target at once.
    pub per_target: usize,
    /// How often to look for due deliveries when nothing wakes the worker.
    pub poll_interval: Duration,
    /// Longest wait between attempts on a failing target.
    pub max_backoff: Duration,
    /// How often the retention sweeper runs (`None`: never; one node at a
    /// time on a shared catalog, by a lease).
    pub retention_interval: Option<Duration>,
    /// How often reconciliation (`fsck` with repair) runs (`None`: never;
    /// one node at a time). Its last report is kept in the catalog.
    pub fsck_interval: Option<Duration>,
}

impl GatewayConfig {
    /// Defaults: 2 GiB segments at most, 60 s idle uploads, 16 deliveries
    /// at once and 4 per target, backoff up to 60 s.
    pub fn new(spool: SpoolConfig) -> Self {
        GatewayConfig {
            spool,
            max_segment_bytes: 2 << 30,
            body_idle_timeout: Duration::from_secs(60),
            deliveries: 16,
            per_target: 4,
            poll_interval: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            retention_interval: Some(Duration::from_secs(600)),
            fsck_interval: Some(Duration::from_secs(24 * 3600)),
        }
    }
}

/// The lease that lets one node at a time sweep retention.
pub const RETENTION_LEASE: &str = "retention";
/// The lease that lets one node at a time run reconciliation.
pub const FSCK_LEASE: &str = "fsck";
/// Settings key of the last scheduled reconciliation's report (JSON).
pub const FSCK_REPORT_SETTING: &str = "recording.fsck_last_report";

/// Run the job `lease` names every `every`, while this node holds its lease
/// (the first run at start, or after one interval with `wait_first`: a
/// reconciliation right after a restart would race the crash adoption).
async fn periodic(inner: Arc<Inner>, lease: &'static str, every: Duration, wait_first: bool) {
    let ttl = i64::try_from(every.as_millis().saturating_mul(3)).unwrap_or(i64::MAX);
    let mut stop = inner.stop.subscribe();
    if wait_first {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
    loop {
        match inner.catalog.try_lease(lease, inner.spool.node_id(), ttl).await {
            Ok(true) => {
                let result = match lease {
                    RETENTION_LEASE => retention::sweep(&inner.catalog, retention::now_ms(), false).await.map(|_| ()),
                    _ => scheduled_fsck(&inner.catalog).await,
                };
                if let Err(e) = result {
                    tracing::warn!(job = lease, error = %e, "periodic job failed; trying again next interval");
                }
            }
            Ok(false) => tracing::debug!(job = lease, "another node holds the lease"),
            Err(e) => tracing::warn!(job = lease, error = %e, "cannot take the job lease"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Reconcile every camera with repair, and keep the report (its first 200
/// findings) where the admin UI shows it.
async fn scheduled_fsck(catalog: &csal_catalog::Catalog) -> Result<()> {
    let mut report = fsck::fsck(catalog, &fsck::FsckOptions { repair: true, ..Default::default() }).await?;
    if !report.findings.is_empty() {
        tracing::warn!(
            findings = report.findings.len(),
            "reconciliation found differences between the index and the targets"
        );
    }
    report.findings.truncate(200);
    let saved = serde_json::json!({"at": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(), "report": report});
    catalog.set_setting(FSCK_REPORT_SETTING, &saved.to_string(), false).await
}

/// The recording gateway of one node. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    catalog: Catalog,
    spool: Arc<Spool>,
    config: GatewayConfig,
    stats: stats::Stats,
    /// Ids of segments that gained a copy (for `ack=delivered` waits).
    progress: broadcast::Sender<String>,
    /// New work for the delivery worker.
    wake: Notify,
    /// Playlist times of segments that were not indexed yet.
    pending_times: ingest::PendingTimes,
    /// Per target: when it may be tried again after failures.
    cooling: Mutex<HashMap<String, delivery::Cooling>>,
    /// Per target: writes at once.
    target_slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    stop: watch::Sender<bool>,
    /// The delivery worker and the retention sweeper.
    workers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    started: Instant,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("spool", &self.inner.spool).finish_non_exhaustive()
    }
}

impl Gateway {
    /// Open the spool, reconcile it with the catalog (see
    /// [`Gateway::reconcile`]) and start delivering.
    pub async fn start(catalog: Catalog, config: GatewayConfig) -> Result<Gateway> {
        let spool_config = config.spool.clone();
        let spool = tokio::task::spawn_blocking(move || Spool::open(&spool_config))
            .await
            .map_err(|_| csal_core::StorageError::permanent("opening the spool panicked"))??;
        let (progress, _) = broadcast::channel(1024);
        let (stop, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            catalog,
            spool: Arc::new(spool),
            config,
            stats: stats::Stats::default(),
            progress,
            wake: Notify::new(),
            pending_times: Default::default(),
            cooling: Mutex::new(HashMap::new()),
            target_slots: Mutex::new(HashMap::new()),
            stop,
            workers: Mutex::new(Vec::new()),
            started: Instant::now(),
        });
        let gateway = Gateway { inner };
        gateway.reconcile().await?;
        let mut workers = vec![tokio::spawn(delivery::run(gateway.inner.clone()))];
        if let Some(every) = gateway.inner.config.retention_interval {
            workers.push(tokio::spawn(periodic(gateway.inner.clone(), RETENTION_LEASE, every, false)));
        }
        if let Some(every) = gateway.inner.config.fsck_interval {
            workers.push(tokio::spawn(periodic(gateway.inner.clone(), FSCK_LEASE, every, true)));
        }
        *gateway.inner.workers.lock().unwrap_or_else(|p| p.into_inner()) = workers;
        tracing::info!(node = %gateway.node_id(), spool = %gateway.inner.spool.dir().display(), "recording gateway started");
        Ok(gateway)
    }

    /// This node's id (kept in the spool directory).
    pub fn node_id(&self) -> &str {
        self.inner.spool.node_id()
    }

    /// The catalog the gateway indexes into.
    pub fn catalog(&self) -> &Catalog {
        &self.inner.catalog
    }

    /// The knobs it runs with.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// Make the spool and the catalog agree, at start:
    /// - a spool file without a spooled row of this node was never
    ///   acknowledged (the node stopped between fsync and commit): removed;
    /// - a spooled row whose file is gone: if enough copies are stored the
    ///   row is marked delivered; otherwise the bytes are lost (someone
    ///   deleted them behind CSAL's back), which is logged as an error and
    ///   left visible as undelivered;
    /// - every spooled segment of this node is due for delivery now.
    pub async fn reconcile(&self) -> Result<()> {
        let inner = &self.inner;
        let rows = inner.catalog.spooled_segments(self.node_id()).await?;
        let files = inner.spool.files()?;
        let known: std::collections::HashSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
        for (id, size) in &files {
            if !known.contains(id.as_str()) {
                tracing::warn!(file = %id, "spool file without an index row (never acknowledged): removed");
                inner.spool.remove(id, *size).await?;
            }
        }
        let present: std::collections::HashSet<&str> = files.iter().map(|(id, _)| id.as_str()).collect();
        for (id, _) in &rows {
            if present.contains(id.as_str()) {
                inner.catalog.defer_segment(id, 0).await?;
                continue;
            }
            match inner.catalog.segment_by_id(id).await? {
                Some(seg) if seg.is_delivered() => inner.catalog.mark_unspooled(id).await?,
                Some(seg) => {
                    tracing::error!(camera = %seg.camera_id, segment = %seg.name, "spooled segment's file is missing \
                         and it is not on enough targets: its bytes are lost");
                    inner.catalog.mark_unspooled(id).await?;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Wait until the segment is on at least `copies` targets, or `timeout`
    /// passes: `Ok` with the record when it is, `Err` with the latest record
    /// when not.
    pub async fn wait_for_copies(
        &self,
        segment_id: &str,
        copies: u32,
        timeout: Duration,
    ) -> Result<std::result::Result<SegmentRecord, SegmentRecord>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = self.inner.progress.subscribe();
        loop {
            let record = self
                .inner
                .catalog
                .segment_by_id(segment_id)
                .await?
                .ok_or_else(|| csal_core::StorageError::not_found("segment is no longer indexed"))?;
            if record.copies_stored >= copies {
                return Ok(Ok(record));
            }
            // Any event, or a lag, means: look again.
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => return Ok(Err(record)),
                Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(Err(record)),
                Ok(_) => {}
            }
        }
    }

    /// Wait until this node's spool is empty (every segment delivered), or
    /// `timeout` passes (`Err` with the segments still spooled): for tests,
    /// and for draining a node before taking it down.
    pub async fn drain(&self, timeout: Duration) -> std::result::Result<(), u64> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = self.inner.progress.subscribe();
        loop {
            let left = self.inner.spool.segment_count();
            if left == 0 {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => return Err(self.inner.spool.segment_count()),
                Ok(_) => {}
            }
        }
    }

    /// Counters and gauges of this node's gateway.
    pub fn stats(&self) -> GatewayStats {
        self.inner.stats.snapshot(&self.inner.spool, self.inner.started.elapsed())
    }

    /// Stop taking segments and delivering (in-flight writes are abandoned;
    /// their journal rows stay `writing` and are resolved at the next start)
    /// and unlock the spool directory.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        self.inner.wake.notify_one();
        let workers = std::mem::take(&mut *self.inner.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for worker in workers {
            worker.abort();
            let _ = worker.await;
        }
        self.inner.spool.release();
    }
}
