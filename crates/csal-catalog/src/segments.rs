//! The segment index and the delivery journal (tables `segments` and
//! `segment_copies`, migration 2).
//!
//! A segment is one file a recorder handed in (an HLS `.ts`, an `.mp4`
//! chunk). Its row is written once the bytes are fsynced in a node's spool
//! and before the recorder is told "stored"; the copy rows record, per
//! storage target, which object holds it. These writes do not bump the
//! catalog's change counter: they are data, not configuration, and must
//! not make other nodes reload their instances.

use std::time::SystemTime;

use csal_core::{ErrorKind, Result, StorageError};
use csal_sql::map_sqlx;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Catalog;
use crate::records::now_ms;

/// Where a segment's start time came from (most trusted last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// Not told: the time the upload finished, minus its duration if known.
    Received,
    /// The recorder's `X-Csal-Start` header.
    Header,
    /// An HLS playlist's `#EXT-X-PROGRAM-DATE-TIME`.
    Playlist,
}

impl TimeSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TimeSource::Received => "received",
            TimeSource::Header => "header",
            TimeSource::Playlist => "playlist",
        }
    }
    fn parse(s: &str) -> TimeSource {
        match s {
            "header" => TimeSource::Header,
            "playlist" => TimeSource::Playlist,
            _ => TimeSource::Received,
        }
    }
}

/// A segment to index (its bytes are already safe in the spool).
#[derive(Debug, Clone)]
pub struct NewSegment {
    /// A fresh unique id (a ULID), chosen by the caller: it names the spool
    /// file before the row exists.
    pub id: String,
    /// The camera it belongs to.
    pub camera_id: String,
    /// The recorder's name of the segment, unique per camera.
    pub name: String,
    /// When it starts (Unix ms).
    pub start_ms: i64,
    /// How long it plays, if known.
    pub duration_ms: Option<i64>,
    /// Where `start_ms` came from.
    pub time_source: TimeSource,
    /// Size in bytes.
    pub size: u64,
    /// CRC32C of the bytes.
    pub crc32c: u32,
    /// `Content-Type` for its copies and playback.
    pub content_type: Option<String>,
    /// The node whose spool holds the bytes (and which delivers them).
    pub node_id: String,
    /// Distinct targets that must hold it before the spool lets it go.
    pub copies_required: u32,
}

/// One indexed segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentRecord {
    /// Its unique id (a ULID).
    pub id: String,
    /// The camera it belongs to.
    pub camera_id: String,
    /// The recorder's name, unique per camera.
    pub name: String,
    /// When it starts (Unix ms).
    pub start_ms: i64,
    /// When it ends (Unix ms; the start when the duration is unknown).
    pub end_ms: i64,
    /// How long it plays, if known.
    pub duration_ms: Option<i64>,
    /// Where `start_ms` came from.
    pub time_source: TimeSource,
    /// Size in bytes.
    pub size: u64,
    /// CRC32C of the bytes, 8 lowercase hex digits.
    pub crc32c: String,
    /// `Content-Type` for its copies and playback.
    pub content_type: Option<String>,
    /// The node whose spool took it.
    pub node_id: String,
    /// The node's spool still holds the bytes (not yet on enough targets).
    pub spooled: bool,
    /// Distinct targets that must hold it.
    pub copies_required: u32,
    /// Targets holding it now.
    pub copies_stored: u32,
    /// When the gateway acknowledged it (Unix ms).
    pub received_ms: i64,
    /// When delivery is tried next (Unix ms).
    pub next_attempt_ms: i64,
}

impl SegmentRecord {
    /// Delivered to as many targets as its policy asked for.
    pub fn is_delivered(&self) -> bool {
        self.copies_stored >= self.copies_required
    }
}

/// State of one (segment, target) pair in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyState {
    /// An attempt started and has not been recorded as finished: under way,
    /// or in doubt after a crash (the target may hold a finished object).
    Writing,
    /// `object_id` on the target holds the segment's bytes.
    Stored,
    /// The last attempt failed (`last_error`).
    Failed,
    /// Retention is deleting this copy; the row goes once the target
    /// confirmed (a failed delete stays here with `last_error`).
    DeletePending,
}

impl CopyState {
    fn parse(s: &str) -> CopyState {
        match s {
            "stored" => CopyState::Stored,
            "writing" => CopyState::Writing,
            "delete_pending" => CopyState::DeletePending,
            _ => CopyState::Failed,
        }
    }
}

/// One target's copy of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentCopy {
    /// The segment.
    pub segment_id: String,
    /// The target instance.
    pub target: String,
    /// Where the copy stands.
    pub state: CopyState,
    /// The key hint the write used (object ids start with its sanitised form).
    pub key_hint: String,
    /// The object on the target, once known.
    pub object_id: Option<String>,
    /// Write attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the row last changed (Unix ms).
    pub updated_ms: i64,
}

/// A camera's recordings at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CameraSummary {
    /// The camera.
    pub camera_id: String,
    /// Indexed segments.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Start of the oldest segment (Unix ms).
    pub oldest_start_ms: i64,
    /// End of the newest segment (Unix ms).
    pub newest_end_ms: i64,
    /// When the last segment arrived (Unix ms).
    pub last_received_ms: i64,
    /// Segments still in a spool: not yet on as many targets as required.
    pub undelivered: u64,
    /// Bytes of the undelivered segments.
    pub undelivered_bytes: u64,
    /// When the oldest undelivered segment was received.
    pub oldest_undelivered_ms: Option<i64>,
}

/// What one node's spool holds, from the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSpool {
    /// The node.
    pub node_id: String,
    /// Segments in its spool.
    pub segments: u64,
    /// Their bytes.
    pub bytes: u64,
    /// When the oldest of them arrived (Unix ms).
    pub oldest_received_ms: i64,
}

/// What CSAL has stored on one target, from the index: the basis of the
/// capacity forecast (how fast the target fills).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetUsage {
    /// The target instance.
    pub target: String,
    /// Bytes of the segment copies the target holds.
    pub stored_bytes: u64,
    /// How many copies those are.
    pub stored_copies: u64,
    /// Bytes stored on it since `since_ms` (the recent ingest rate).
    pub recent_bytes: u64,
    /// When the oldest of those recent copies was stored (the window the
    /// rate is measured over, if the target is younger than the window).
    pub recent_oldest_ms: Option<i64>,
}

/// A time window and page of [`Catalog::list_segments`].
#[derive(Debug, Clone, Default)]
pub struct SegmentQuery {
    /// Segments ending after this (ms).
    pub from_ms: Option<i64>,
    /// Segments starting before this (ms).
    pub to_ms: Option<i64>,
    /// Continue after this (start_ms, name), from the previous page.
    pub after: Option<(i64, String)>,
    /// Page size, clamped to 1..=the catalog's largest page.
    pub limit: u32,
}

pub(crate) const SEGMENT_COLS: &str = "id, camera_id, name, start_ms, end_ms, duration_ms, time_source, size, crc32c, content_type, \
     node_id, spooled, copies_required, copies_stored, next_attempt_ms, received_ms";
pub(crate) const COPY_COLS: &str = "segment_id, target, state, key_hint, object_id, attempts, last_error, updated_ms";

/// Largest page of [`Catalog::list_segments`].
pub const MAX_SEGMENT_PAGE: u32 = 10_000;

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Catalog {
    fn seg_err(&self, what: &'static str) -> impl Fn(sqlx::Error) -> StorageError + use<> {
        let backend = self.backend();
        move |e| map_sqlx(e, backend, what)
    }

    /// Run `query` and parse every row with `parse`.
    async fn rows<'q, T>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
        what: &'static str,
        parse: impl Fn(&Self, &AnyRow) -> Result<T>,
    ) -> Result<Vec<T>> {
        let rows = query.fetch_all(self.pool()).await.map_err(self.seg_err(what))?;
        rows.iter().map(|r| parse(self, r)).collect()
    }

    pub(crate) fn parse_segment(&self, row: &AnyRow) -> Result<SegmentRecord> {
        let err = self.seg_err("read segment row");
        Ok(SegmentRecord {
            id: row.try_get("id").map_err(&err)?,
            camera_id: row.try_get("camera_id").map_err(&err)?,
            name: row.try_get("name").map_err(&err)?,
            start_ms: row.try_get("start_ms").map_err(&err)?,
            end_ms: row.try_get("end_ms").map_err(&err)?,
            duration_ms: row.try_get("duration_ms").map_err(&err)?,
            time_source: TimeSource::parse(&row.try_get::<String, _>("time_source").map_err(&err)?),
            size: u64_of(row.try_get("size").map_err(&err)?),
            crc32c: row.try_get("crc32c").map_err(&err)?,
            content_type: row.try_get("content_type").map_err(&err)?,
            node_id: row.try_get("node_id").map_err(&err)?,
            spooled: row.try_get::<i64, _>("spooled").map_err(&err)? != 0,
            copies_required: u64_of(row.try_get("copies_required").map_err(&err)?) as u32,
            copies_stored: u64_of(row.try_get("copies_stored").map_err(&err)?) as u32,
            next_attempt_ms: row.try_get("next_attempt_ms").map_err(&err)?,
            received_ms: row.try_get("received_ms").map_err(&err)?,
        })
    }

    pub(crate) fn parse_copy(&self, row: &AnyRow) -> Result<SegmentCopy> {
        let err = self.seg_err("read segment copy row");
        Ok(SegmentCopy {
            segment_id: row.try_get("segment_id").map_err(&err)?,
            target: row.try_get("target").map_err(&err)?,
            state: CopyState::parse(&row.try_get::<String, _>("state").map_err(&err)?),
            key_hint: row.try_get("key_hint").map_err(&err)?,
            object_id: row.try_get("object_id").map_err(&err)?,
            attempts: u64_of(row.try_get("attempts").map_err(&err)?) as u32,
            last_error: row.try_get("last_error").map_err(&err)?,
            updated_ms: row.try_get("updated_ms").map_err(&err)?,
        })
    }

    /// Index a segment. `AlreadyExists` when the camera already has a
    /// segment of that name (the caller compares the two).
    pub async fn insert_segment(&self, new: &NewSegment) -> Result<SegmentRecord> {
        let id = &new.id;
        let now = now_ms();
        let end_ms = new.start_ms.saturating_add(new.duration_ms.unwrap_or(0).max(0));
        let size = i64::try_from(new.size).map_err(|_| StorageError::invalid_input("segment is too large"))?;
        sqlx::query(&format!(
            "INSERT INTO segments ({SEGMENT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, 0, $13, $14)"
        ))
        .bind(id)
        .bind(&new.camera_id)
        .bind(&new.name)
        .bind(new.start_ms)
        .bind(end_ms)
        .bind(new.duration_ms)
        .bind(new.time_source.as_str())
        .bind(size)
        .bind(format!("{:08x}", new.crc32c))
        .bind(new.content_type.clone())
        .bind(&new.node_id)
        .bind(i64::from(new.copies_required.max(1)))
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(|e| match map_sqlx(e, self.backend(), "index segment") {
            e if e.kind() == ErrorKind::AlreadyExists => StorageError::already_exists(format!(
                "camera '{}' already has a segment named '{}'",
                new.camera_id, new.name
            )),
            e => e,
        })?;
        self.segment_by_id(id).await?.ok_or_else(|| StorageError::permanent("indexed segment vanished"))
    }

    /// The camera's segment called `name`.
    pub async fn segment(&self, camera_id: &str, name: &str) -> Result<Option<SegmentRecord>> {
        let row = sqlx::query(&format!("SELECT {SEGMENT_COLS} FROM segments WHERE camera_id = $1 AND name = $2"))
            .bind(camera_id)
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(self.seg_err("find segment"))?;
        row.map(|r| self.parse_segment(&r)).transpose()
    }

    /// A segment by id.
    pub async fn segment_by_id(&self, id: &str) -> Result<Option<SegmentRecord>> {
        let row = sqlx::query(&format!("SELECT {SEGMENT_COLS} FROM segments WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(self.seg_err("find segment"))?;
        row.map(|r| self.parse_segment(&r)).transpose()
    }

    /// A camera's segments overlapping a time window, oldest first, one page.
    pub async fn list_segments(&self, camera_id: &str, query: &SegmentQuery) -> Result<Vec<SegmentRecord>> {
        let limit = i64::from(query.limit.clamp(1, MAX_SEGMENT_PAGE));
        let (after_start, after_name) = query.after.clone().unwrap_or((i64::MIN, String::new()));
        let sql = format!(
            "SELECT {SEGMENT_COLS} FROM segments WHERE camera_id = $1 AND end_ms > $2 AND start_ms < $3 \
             AND (start_ms > $4 OR (start_ms = $4 AND name > $5)) ORDER BY start_ms, name LIMIT $6"
        );
        let query = sqlx::query(&sql)
            .bind(camera_id)
            .bind(query.from_ms.unwrap_or(i64::MIN))
            .bind(query.to_ms.unwrap_or(i64::MAX))
            .bind(after_start)
            .bind(after_name)
            .bind(limit);
        self.rows(query, "list segments", Self::parse_segment).await
    }

    /// The longest segment (ms) of a camera in a time window (0 if none).
    pub async fn max_segment_duration(&self, camera_id: &str, from_ms: Option<i64>, to_ms: Option<i64>) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(MAX(end_ms - start_ms) AS BIGINT) AS d FROM segments \
             WHERE camera_id = $1 AND end_ms > $2 AND start_ms < $3",
        )
        .bind(camera_id)
        .bind(from_ms.unwrap_or(i64::MIN))
        .bind(to_ms.unwrap_or(i64::MAX))
        .fetch_one(self.pool())
        .await
        .map_err(self.seg_err("find the longest segment"))?;
        sum(&row, "d").map_err(self.seg_err("read the longest segment"))
    }

    /// Every camera that has segments, with counts, bytes and delivery lag.
    pub async fn camera_summaries(&self) -> Result<Vec<CameraSummary>> {
        let query = sqlx::query(
            "SELECT camera_id, COUNT(*) AS n, CAST(SUM(size) AS BIGINT) AS bytes, MIN(start_ms) AS oldest, MAX(end_ms) AS newest, \
             MAX(received_ms) AS last_received, \
             CAST(SUM(CASE WHEN spooled = 1 THEN 1 ELSE 0 END) AS BIGINT) AS undelivered, \
             CAST(SUM(CASE WHEN spooled = 1 THEN size ELSE 0 END) AS BIGINT) AS undelivered_bytes, \
             MIN(CASE WHEN spooled = 1 THEN received_ms END) AS oldest_undelivered \
             FROM segments GROUP BY camera_id ORDER BY camera_id",
        );
        self.rows(query, "summarise cameras", |cat, r| {
            let err = cat.seg_err("read camera summary");
            Ok(CameraSummary {
                camera_id: r.try_get("camera_id").map_err(&err)?,
                segments: u64_of(r.try_get("n").map_err(&err)?),
                bytes: u64_of(sum(r, "bytes").map_err(&err)?),
                oldest_start_ms: r.try_get("oldest").map_err(&err)?,
                newest_end_ms: r.try_get("newest").map_err(&err)?,
                last_received_ms: r.try_get("last_received").map_err(&err)?,
                undelivered: u64_of(sum(r, "undelivered").map_err(&err)?),
                undelivered_bytes: u64_of(sum(r, "undelivered_bytes").map_err(&err)?),
                oldest_undelivered_ms: r.try_get("oldest_undelivered").map_err(&err)?,
            })
        })
        .await
    }

    /// Set start times and durations of a camera's segments from a
    /// playlist: `(name, start_ms if the playlist dates it, duration_ms)`.
    /// A dated start replaces any start; an undated one only a start that
    /// was guessed from the arrival time (shifted back by the duration).
    /// Returns the names that are not indexed (yet).
    pub async fn set_segment_times(
        &self,
        camera_id: &str,
        times: &[(String, Option<i64>, i64)],
    ) -> Result<Vec<String>> {
        let err = self.seg_err("update segment times");
        let mut tx = self.pool().begin().await.map_err(&err)?;
        let mut missing = Vec::new();
        for (name, start, duration) in times {
            let duration = (*duration).max(0);
            let result = match start {
                Some(start) => sqlx::query(
                    "UPDATE segments SET start_ms = $1, end_ms = $2, duration_ms = $3, time_source = 'playlist' \
                     WHERE camera_id = $4 AND name = $5",
                )
                .bind(*start)
                .bind(start.saturating_add(duration))
                .bind(duration)
                .bind(camera_id)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(&err)?,
                None => sqlx::query(
                    "UPDATE segments SET \
                     start_ms = CASE WHEN time_source = 'received' THEN received_ms - $1 ELSE start_ms END, \
                     end_ms = CASE WHEN time_source = 'received' THEN received_ms ELSE start_ms + $1 END, \
                     duration_ms = $1 WHERE camera_id = $2 AND name = $3",
                )
                .bind(duration)
                .bind(camera_id)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(&err)?,
            };
            if result.rows_affected() == 0 {
                missing.push(name.clone());
            }
        }
        tx.commit().await.map_err(&err)?;
        Ok(missing)
    }

    /// Per node: segments still spooled (not on enough targets), their
    /// bytes, and when the oldest arrived.
    pub async fn spool_summary(&self) -> Result<Vec<NodeSpool>> {
        let query = sqlx::query(
            "SELECT node_id, COUNT(*) AS n, CAST(SUM(size) AS BIGINT) AS bytes, MIN(received_ms) AS oldest \
             FROM segments WHERE spooled = 1 GROUP BY node_id ORDER BY node_id",
        );
        self.rows(query, "summarise spools", |cat, r| {
            let err = cat.seg_err("read spool summary");
            Ok(NodeSpool {
                node_id: r.try_get("node_id").map_err(&err)?,
                segments: u64_of(r.try_get("n").map_err(&err)?),
                bytes: u64_of(sum(r, "bytes").map_err(&err)?),
                oldest_received_ms: r.try_get("oldest").map_err(&err)?,
            })
        })
        .await
    }

    /// Per target: the copies it holds and what it took in since
    /// `since_ms`. One grouped pass over the stored copies.
    pub async fn target_usage(&self, since_ms: i64) -> Result<Vec<TargetUsage>> {
        let query = sqlx::query(
            "SELECT c.target AS target, COUNT(*) AS n, CAST(SUM(s.size) AS BIGINT) AS bytes, \
             CAST(SUM(CASE WHEN c.updated_ms >= $1 THEN s.size ELSE 0 END) AS BIGINT) AS recent, \
             MIN(CASE WHEN c.updated_ms >= $1 THEN c.updated_ms END) AS recent_oldest \
             FROM segment_copies c JOIN segments s ON s.id = c.segment_id \
             WHERE c.state = 'stored' GROUP BY c.target ORDER BY c.target",
        )
        .bind(since_ms);
        self.rows(query, "sum the bytes on each target", |cat, r| {
            let err = cat.seg_err("read target usage");
            Ok(TargetUsage {
                target: r.try_get("target").map_err(&err)?,
                stored_copies: u64_of(r.try_get("n").map_err(&err)?),
                stored_bytes: u64_of(sum(r, "bytes").map_err(&err)?),
                recent_bytes: u64_of(sum(r, "recent").map_err(&err)?),
                recent_oldest_ms: r.try_get("recent_oldest").map_err(&err)?,
            })
        })
        .await
    }

    // ------------------------------------------------------------ delivery

    /// A node's spooled segments whose next delivery attempt is due, oldest
    /// first.
    pub async fn due_segments(&self, node_id: &str, now_ms: i64, limit: u32) -> Result<Vec<SegmentRecord>> {
        let sql = format!(
            "SELECT {SEGMENT_COLS} FROM segments WHERE node_id = $1 AND spooled = 1 AND next_attempt_ms <= $2 \
             ORDER BY next_attempt_ms, received_ms LIMIT $3"
        );
        let query = sqlx::query(&sql).bind(node_id).bind(now_ms).bind(i64::from(limit.max(1)));
        self.rows(query, "find segments to deliver", Self::parse_segment).await
    }

    /// Every segment a node's spool should hold: `(id, size)`.
    pub async fn spooled_segments(&self, node_id: &str) -> Result<Vec<(String, u64)>> {
        let query = sqlx::query("SELECT id, size FROM segments WHERE node_id = $1 AND spooled = 1").bind(node_id);
        self.rows(query, "list spooled segments", |cat, r| {
            let err = cat.seg_err("read spooled segment");
            Ok((r.try_get("id").map_err(&err)?, u64_of(r.try_get("size").map_err(&err)?)))
        })
        .await
    }

    /// The journal of one segment: a row per target ever attempted.
    pub async fn segment_copies(&self, segment_id: &str) -> Result<Vec<SegmentCopy>> {
        let sql = format!("SELECT {COPY_COLS} FROM segment_copies WHERE segment_id = $1 ORDER BY target");
        self.rows(sqlx::query(&sql).bind(segment_id), "read segment copies", Self::parse_copy).await
    }

    /// Record, before any byte goes out, that a write of the segment to
    /// `target` is starting under `key_hint`: after a crash, the copy is in
    /// doubt rather than forgotten.
    pub async fn begin_copy(&self, segment_id: &str, target: &str, key_hint: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO segment_copies (segment_id, target, state, key_hint, object_id, attempts, last_error, updated_ms) \
             VALUES ($1, $2, 'writing', $3, NULL, 1, NULL, $4) \
             ON CONFLICT (segment_id, target) DO UPDATE SET state = 'writing', key_hint = excluded.key_hint, \
             attempts = segment_copies.attempts + 1, updated_ms = excluded.updated_ms",
        )
        .bind(segment_id)
        .bind(target)
        .bind(key_hint)
        .bind(now_ms())
        .execute(self.pool())
        .await
        .map_err(self.seg_err("journal delivery start"))?;
        Ok(())
    }

    /// Record that `object_id` on `target` holds the segment; returns the
    /// segment as updated (its `copies_stored` recounted).
    pub async fn copy_stored(&self, segment_id: &str, target: &str, object_id: &str) -> Result<SegmentRecord> {
        let err = self.seg_err("journal delivered copy");
        let mut tx = self.pool().begin().await.map_err(&err)?;
        sqlx::query(
            "UPDATE segment_copies SET state = 'stored', object_id = $1, last_error = NULL, updated_ms = $2 \
             WHERE segment_id = $3 AND target = $4",
        )
        .bind(object_id)
        .bind(now_ms())
        .bind(segment_id)
        .bind(target)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        sqlx::query(
            "UPDATE segments SET copies_stored = \
             (SELECT COUNT(*) FROM segment_copies WHERE segment_id = $1 AND state = 'stored') WHERE id = $1",
        )
        .bind(segment_id)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        self.segment_by_id(segment_id).await?.ok_or_else(|| StorageError::not_found("segment vanished"))
    }

    /// Record a failed attempt (the error is shown to admins: secret-free).
    pub async fn copy_failed(&self, segment_id: &str, target: &str, error: &str) -> Result<()> {
        let error: String = error.chars().take(1000).collect();
        sqlx::query(
            "UPDATE segment_copies SET state = 'failed', last_error = $1, updated_ms = $2 \
             WHERE segment_id = $3 AND target = $4",
        )
        .bind(error)
        .bind(now_ms())
        .bind(segment_id)
        .bind(target)
        .execute(self.pool())
        .await
        .map_err(self.seg_err("journal failed delivery"))?;
        Ok(())
    }

    /// Try the segment again no earlier than `at_ms`.
    pub async fn defer_segment(&self, segment_id: &str, at_ms: i64) -> Result<()> {
        sqlx::query("UPDATE segments SET next_attempt_ms = $1 WHERE id = $2")
            .bind(at_ms)
            .bind(segment_id)
            .execute(self.pool())
            .await
            .map_err(self.seg_err("defer segment delivery"))?;
        Ok(())
    }

    /// Make every spooled segment of a node due now (after a configuration
    /// change that may have fixed a target).
    pub async fn retry_spooled_now(&self, node_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE segments SET next_attempt_ms = 0 WHERE node_id = $1 AND spooled = 1 AND next_attempt_ms > 0",
        )
        .bind(node_id)
        .execute(self.pool())
        .await
        .map_err(self.seg_err("reschedule deliveries"))?;
        Ok(())
    }

    /// The segment is on enough targets: its spool copy may go.
    pub async fn mark_unspooled(&self, segment_id: &str) -> Result<()> {
        sqlx::query("UPDATE segments SET spooled = 0 WHERE id = $1")
            .bind(segment_id)
            .execute(self.pool())
            .await
            .map_err(self.seg_err("mark segment delivered"))?;
        Ok(())
    }
}

/// A `CAST(SUM(...) AS BIGINT)` column (NULL over no rows).
fn sum(row: &AnyRow, column: &str) -> std::result::Result<i64, sqlx::Error> {
    row.try_get::<Option<i64>, _>(column).map(Option::unwrap_or_default)
}

/// Milliseconds since the Unix epoch of a time (clamped to the i64 range).
pub fn time_to_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}
