//! Taking a segment in: stream it to a temporary spool file (CRC32C and
//! size counted on the way, the spool cap enforced chunk by chunk), fsync
//! it, move it into place, fsync the folder, index it. Only then is it
//! acknowledged. Any failure before that leaves nothing behind: no file, no
//! row.

use std::time::{Duration, SystemTime};

use csal_catalog::{NewSegment, SegmentRecord, TimeSource, time_to_ms};
use csal_core::{ByteStream, ErrorKind, StorageError};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::Gateway;
use crate::names::{check_camera_id, check_segment_name, content_type_for};
use crate::store::{Reservation, sync_dir};

/// A segment upload, as the recorder described it.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// The camera, as in its policy.
    pub camera_id: String,
    /// The segment's name, unique per camera.
    pub name: String,
    /// `Content-Type` kept with the segment and its copies.
    pub content_type: Option<String>,
    /// When the segment starts (e.g. `X-Csal-Start`).
    pub start: Option<SystemTime>,
    /// How long the segment plays, if the recorder says.
    pub duration: Option<Duration>,
    /// The CRC32C the recorder computed; a mismatch refuses the upload.
    pub expected_crc32c: Option<u32>,
    /// The declared length (`Content-Length`), if any.
    pub content_length: Option<u64>,
}

impl IngestRequest {
    /// An upload of segment `name` of `camera_id`, with nothing else declared.
    pub fn new(camera_id: impl Into<String>, name: impl Into<String>) -> Self {
        IngestRequest {
            camera_id: camera_id.into(),
            name: name.into(),
            content_type: None,
            start: None,
            duration: None,
            expected_crc32c: None,
            content_length: None,
        }
    }
}

/// A successful upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Stored and indexed now.
    Created(SegmentRecord),
    /// The same bytes were already stored under this name (a retry).
    Identical(SegmentRecord),
}

impl IngestOutcome {
    /// The indexed segment, either way.
    pub fn record(&self) -> &SegmentRecord {
        match self {
            IngestOutcome::Created(r) | IngestOutcome::Identical(r) => r,
        }
    }
}

/// Why an upload was refused. Nothing of it was kept.
#[derive(Debug)]
pub enum IngestError {
    /// A bad camera id, name or header; a body shorter or longer than its
    /// Content-Length; a CRC32C mismatch. (HTTP 400)
    Invalid(StorageError),
    /// The camera has no storage policy, so nothing could deliver it. (404)
    NoPolicy(StorageError),
    /// The camera has a segment of that name with other bytes. (409)
    Conflict(Box<SegmentRecord>),
    /// Larger than the gateway accepts. (413)
    TooLarge {
        /// The largest segment accepted.
        limit: u64,
    },
    /// The spool is at its cap. (507, with Retry-After)
    SpoolFull {
        /// What is full, for the recorder.
        message: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// The recorder stopped sending for longer than the idle timeout. (408)
    Stalled(Duration),
    /// The connection broke mid-body. (400; the client is gone anyway)
    BodyBroken(StorageError),
    /// The spool's disk or the catalog failed. (503)
    Unavailable(StorageError),
}

impl IngestError {
    /// A short machine-readable reason (`/metrics` label, JSON `kind`).
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Invalid(_) => "invalid",
            IngestError::NoPolicy(_) => "no_policy",
            IngestError::Conflict(_) => "conflict",
            IngestError::TooLarge { .. } => "too_large",
            IngestError::SpoolFull { .. } => "spool_full",
            IngestError::Stalled(_) => "stalled",
            IngestError::BodyBroken(_) => "body_broken",
            IngestError::Unavailable(_) => "unavailable",
        }
    }
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Invalid(e) | IngestError::NoPolicy(e) | IngestError::Unavailable(e) => {
                write!(f, "{}", e.message())
            }
            IngestError::BodyBroken(e) => write!(f, "the upload broke off: {}", e.message()),
            IngestError::Conflict(r) => write!(
                f,
                "camera '{}' already has a segment named '{}' with other bytes ({} bytes, crc32c {}); \
                 segment names must be unique per camera",
                r.camera_id, r.name, r.size, r.crc32c
            ),
            IngestError::TooLarge { limit } => write!(f, "segment larger than the {limit}-byte limit"),
            IngestError::SpoolFull { message, .. } => f.write_str(message),
            IngestError::Stalled(d) => write!(f, "the upload sent nothing for {} s", d.as_secs()),
        }
    }
}

impl std::error::Error for IngestError {}

/// What a recorder's playlist changed in the index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlaylistOutcome {
    /// Segments the playlist named.
    pub named: usize,
    /// Of those, segments indexed and dated now.
    pub dated: usize,
    /// Named segments not indexed yet: their times are kept for a while and
    /// applied when they arrive (a recorder may send a playlist while the
    /// segment it names is still being stored).
    pub pending: usize,
    /// URIs that are not segment names the gateway accepts.
    pub skipped: Vec<String>,
}

/// Playlist times of segments not indexed yet, kept this long.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// At most this many pending times are kept.
const PENDING_MAX: usize = 20_000;

/// (start_ms if dated, duration_ms, when noted), by (camera, name).
pub(crate) type PendingTimes =
    std::sync::Mutex<std::collections::HashMap<(String, String), (Option<i64>, i64, std::time::Instant)>>;

/// What streaming a body produced.
struct Received {
    size: u64,
    crc: u32,
}

impl Gateway {
    /// Read a recorder's live playlist (not stored) and date the segments
    /// it names: `#EXTINF` durations, `#EXT-X-PROGRAM-DATE-TIME` starts.
    pub async fn apply_playlist(&self, camera_id: &str, text: &str) -> csal_core::Result<PlaylistOutcome> {
        check_camera_id(camera_id)?;
        let parsed = crate::hls::parse_media_playlist(text)?;
        let times: Vec<(String, Option<i64>, i64)> =
            parsed.entries.iter().map(|e| (e.name.clone(), e.start_ms, e.duration_ms)).collect();
        // Noted before the update, taken after an insert (see `take_pending_time`):
        // whichever of playlist and segment comes second applies the times.
        {
            let mut pending = self.inner.pending_times.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            pending.retain(|_, (_, _, at)| now.duration_since(*at) < PENDING_TTL);
            for (name, start, duration) in &times {
                if pending.len() < PENDING_MAX {
                    pending.insert((camera_id.to_owned(), name.clone()), (*start, *duration, now));
                }
            }
        }
        let missing = self.inner.catalog.set_segment_times(camera_id, &times).await?;
        {
            let mut pending = self.inner.pending_times.lock().unwrap_or_else(|p| p.into_inner());
            for (name, _, _) in times.iter().filter(|(n, _, _)| !missing.contains(n)) {
                pending.remove(&(camera_id.to_owned(), name.clone()));
            }
        }
        Ok(PlaylistOutcome {
            named: times.len(),
            dated: times.len() - missing.len(),
            pending: missing.len(),
            skipped: parsed.skipped,
        })
    }

    /// Apply playlist times that arrived before this segment did.
    async fn take_pending_time(&self, record: SegmentRecord) -> SegmentRecord {
        let key = (record.camera_id.clone(), record.name.clone());
        let found = self.inner.pending_times.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        let Some((start, duration, _)) = found else { return record };
        let times = [(record.name.clone(), start, duration)];
        match self.inner.catalog.set_segment_times(&record.camera_id, &times).await {
            Ok(_) => self.inner.catalog.segment_by_id(&record.id).await.ok().flatten().unwrap_or(record),
            Err(e) => {
                tracing::warn!(error = %e, "cannot date a segment from its playlist");
                record
            }
        }
    }

    /// Take one segment. See [`IngestOutcome`] and [`IngestError`].
    pub async fn ingest(&self, req: IngestRequest, body: ByteStream) -> Result<IngestOutcome, IngestError> {
        let result = self.ingest_inner(req, body).await;
        match &result {
            Ok(IngestOutcome::Created(r)) => self.inner.stats.ingested(r.size),
            Ok(IngestOutcome::Identical(_)) => self.inner.stats.duplicate(),
            Err(e) => self.inner.stats.refused(e.reason()),
        }
        result
    }

    async fn ingest_inner(&self, req: IngestRequest, body: ByteStream) -> Result<IngestOutcome, IngestError> {
        check_camera_id(&req.camera_id).map_err(IngestError::Invalid)?;
        check_segment_name(&req.name).map_err(IngestError::Invalid)?;
        if !self.inner.spool.is_open() {
            return Err(IngestError::Unavailable(StorageError::new(ErrorKind::Unavailable, "the gateway is stopping")));
        }
        let limit = self.inner.config.max_segment_bytes;
        if req.content_length.is_some_and(|n| n > limit) {
            return Err(IngestError::TooLarge { limit });
        }
        let catalog = &self.inner.catalog;
        let policy = catalog.get_policy(&req.camera_id).await.map_err(|e| match e.kind() {
            ErrorKind::NotFound => IngestError::NoPolicy(StorageError::not_found(format!(
                "camera '{}' has no storage policy; set one (admin UI Policies, or PUT /api/policies/{})",
                req.camera_id, req.camera_id
            ))),
            _ => IngestError::Unavailable(e),
        })?;
        if let Some(existing) = catalog.segment(&req.camera_id, &req.name).await.map_err(IngestError::Unavailable)? {
            let got = self.read_to_compare(&req, body).await?;
            return compare(existing, &got);
        }
        let tmp = self.inner.spool.tmp_path();
        let mut reservation = Reservation::new(self.inner.spool.clone());
        let received = match self.receive(&req, body, &tmp, &mut reservation).await {
            Ok(r) => r,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let id = ulid::Ulid::new().to_string();
        let path = self.inner.spool.segment_path(&id);
        let placed = async {
            tokio::fs::rename(&tmp, &path).await?;
            let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
            tokio::task::spawn_blocking(move || sync_dir(&dir)).await.map_err(std::io::Error::other)?
        };
        if let Err(e) = placed.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            let _ = tokio::fs::remove_file(&path).await;
            return Err(IngestError::Unavailable(StorageError::from(e).with_instance("spool")));
        }
        let now = SystemTime::now();
        let duration_ms = req.duration.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let (start_ms, time_source) = match req.start {
            Some(start) => (time_to_ms(start), TimeSource::Header),
            None => (time_to_ms(now) - duration_ms.unwrap_or(0), TimeSource::Received),
        };
        let new = NewSegment {
            id: id.clone(),
            camera_id: req.camera_id.clone(),
            name: req.name.clone(),
            start_ms,
            duration_ms,
            time_source,
            size: received.size,
            crc32c: received.crc,
            content_type: Some(req.content_type.clone().unwrap_or_else(|| content_type_for(&req.name).to_owned())),
            node_id: self.node_id().to_owned(),
            copies_required: policy.copies.max(1),
        };
        match catalog.insert_segment(&new).await {
            Ok(record) => {
                reservation.commit(received.size);
                self.inner.wake.notify_one();
                Ok(IngestOutcome::Created(self.take_pending_time(record).await))
            }
            Err(e) => {
                // Not acknowledged: the bytes go (another upload of the
                // same name may have won the race; compare with it).
                let _ = tokio::fs::remove_file(&path).await;
                drop(reservation);
                if e.kind() == ErrorKind::AlreadyExists
                    && let Ok(Some(winner)) = catalog.segment(&req.camera_id, &req.name).await
                {
                    return compare(winner, &received);
                }
                Err(IngestError::Unavailable(e))
            }
        }
    }

    /// The next chunk of the body, or `Stalled` after the idle timeout.
    async fn next_chunk(&self, body: &mut ByteStream) -> Result<Option<bytes::Bytes>, IngestError> {
        let idle = self.inner.config.body_idle_timeout;
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => Err(IngestError::Stalled(idle)),
            Ok(None) => Ok(None),
            Ok(Some(Ok(chunk))) => Ok(Some(chunk)),
            Ok(Some(Err(e))) => Err(IngestError::BodyBroken(e)),
        }
    }

    /// Stream the body into `tmp` and fsync it.
    async fn receive(
        &self,
        req: &IngestRequest,
        mut body: ByteStream,
        tmp: &std::path::Path,
        reservation: &mut Reservation,
    ) -> Result<Received, IngestError> {
        let unavailable = |e: std::io::Error| IngestError::Unavailable(StorageError::from(e).with_instance("spool"));
        let limit = self.inner.config.max_segment_bytes;
        if let Some(n) = req.content_length {
            reservation.grow(n).map_err(|e| self.spool_full(e))?;
        }
        let mut file = tokio::fs::File::create(tmp).await.map_err(unavailable)?;
        let (mut size, mut crc) = (0u64, 0u32);
        while let Some(chunk) = self.next_chunk(&mut body).await? {
            size += chunk.len() as u64;
            if size > limit {
                return Err(IngestError::TooLarge { limit });
            }
            if req.content_length.is_some_and(|n| size > n) {
                return Err(IngestError::Invalid(StorageError::invalid_input(format!(
                    "the body is longer than its Content-Length of {} bytes",
                    req.content_length.unwrap_or(0)
                ))));
            }
            if req.content_length.is_none() {
                reservation.grow(chunk.len() as u64).map_err(|e| self.spool_full(e))?;
            }
            crc = csal_core::crc32c_append(crc, &chunk);
            file.write_all(&chunk).await.map_err(|e| match e.raw_os_error() {
                Some(28) => self.spool_full(StorageError::new(ErrorKind::QuotaExceeded, "the spool's disk is full")),
                _ => unavailable(e),
            })?;
        }
        check_received(req, size, crc)?;
        file.sync_all().await.map_err(unavailable)?;
        Ok(Received { size, crc })
    }

    /// Read a body only to compare it (an upload of a name already stored).
    async fn read_to_compare(&self, req: &IngestRequest, mut body: ByteStream) -> Result<Received, IngestError> {
        let limit = self.inner.config.max_segment_bytes;
        let (mut size, mut crc) = (0u64, 0u32);
        while let Some(chunk) = self.next_chunk(&mut body).await? {
            size += chunk.len() as u64;
            if size > limit {
                return Err(IngestError::TooLarge { limit });
            }
            crc = csal_core::crc32c_append(crc, &chunk);
        }
        check_received(req, size, crc)?;
        Ok(Received { size, crc })
    }

    fn spool_full(&self, e: StorageError) -> IngestError {
        // Long enough for deliveries to make room, short enough to keep a
        // recorder's own buffer from overflowing.
        IngestError::SpoolFull { message: e.message().to_owned(), retry_after: Duration::from_secs(5) }
    }
}

/// Length and checksum against what the recorder declared.
fn check_received(req: &IngestRequest, size: u64, crc: u32) -> Result<(), IngestError> {
    if let Some(n) = req.content_length.filter(|n| *n != size) {
        return Err(IngestError::Invalid(StorageError::invalid_input(format!(
            "the body has {size} bytes but its Content-Length said {n}"
        ))));
    }
    if let Some(expected) = req.expected_crc32c.filter(|e| *e != crc) {
        return Err(IngestError::Invalid(StorageError::new(
            ErrorKind::Integrity,
            format!("CRC32C mismatch: the body's is {crc:08x}, X-Csal-Checksum-Crc32c said {expected:08x}"),
        )));
    }
    Ok(())
}

fn compare(existing: SegmentRecord, got: &Received) -> Result<IngestOutcome, IngestError> {
    if existing.size == got.size && existing.crc32c == format!("{:08x}", got.crc) {
        Ok(IngestOutcome::Identical(existing))
    } else {
        Err(IngestError::Conflict(Box::new(existing)))
    }
}
