//! Legal holds, job leases, and the index side of retention (migration 4).
//!
//! Retention deletes storage first and the index after: a copy about to be
//! deleted is marked `delete_pending`; only once the target confirmed the
//! delete is its row removed (and the segment's row once no copy is left).
//! A delete that fails leaves the row `delete_pending`, so the index never
//! silently points at nothing and the next sweep tries again.

use std::time::SystemTime;

use csal_core::{Result, StorageError};
use csal_sql::map_sqlx;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Catalog;
use crate::records::{check_key, ms_to_time, now_ms};
use crate::segments::SegmentRecord;

/// Evidence that must not be deleted: a camera's recordings, all of them
/// or those overlapping `[from_ms, to_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegalHold {
    /// The hold's id (a ULID).
    pub id: String,
    /// The camera held.
    pub camera_id: String,
    /// Start of the held time (Unix ms); `None`: from the first recording.
    pub from_ms: Option<i64>,
    /// End of the held time (Unix ms, excluded); `None`: no end.
    pub to_ms: Option<i64>,
    /// Why (a case, an incident).
    pub reason: String,
    /// Who placed it.
    pub created_by: String,
    /// When it was placed.
    #[serde(serialize_with = "crate::records::ser_time")]
    pub created_at: SystemTime,
}

impl LegalHold {
    /// Whether the hold covers a segment spanning `[start_ms, end_ms)`.
    pub fn covers(&self, start_ms: i64, end_ms: i64) -> bool {
        self.from_ms.is_none_or(|f| end_ms > f) && self.to_ms.is_none_or(|t| start_ms < t)
    }

    /// "hold 01J... (reason, by who)" for error messages.
    pub fn describe(&self) -> String {
        format!("legal hold {} ({}, set by {})", self.id, self.reason, self.created_by)
    }
}

/// A hold to place.
#[derive(Debug, Clone)]
pub struct NewHold {
    /// The camera to hold.
    pub camera_id: String,
    /// Start of the held time (Unix ms); `None`: from the first recording.
    pub from_ms: Option<i64>,
    /// End (Unix ms, excluded); `None`: no end.
    pub to_ms: Option<i64>,
    /// Why (a case, an incident).
    pub reason: String,
    /// Who asked (a person's name, a case number's owner, a token name).
    pub created_by: String,
}

const HOLD_COLS: &str = "id, camera_id, from_ms, to_ms, reason, created_by, created_ms";

fn parse_hold(row: &AnyRow, catalog: &Catalog) -> Result<LegalHold> {
    let err = |e| map_sqlx(e, catalog.backend(), "read legal hold");
    Ok(LegalHold {
        id: row.try_get("id").map_err(err)?,
        camera_id: row.try_get("camera_id").map_err(err)?,
        from_ms: row.try_get("from_ms").map_err(err)?,
        to_ms: row.try_get("to_ms").map_err(err)?,
        reason: row.try_get("reason").map_err(err)?,
        created_by: row.try_get("created_by").map_err(err)?,
        created_at: ms_to_time(row.try_get("created_ms").map_err(err)?),
    })
}

fn check_text(what: &str, value: &str, max: usize) -> Result<()> {
    if value.trim().is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(StorageError::invalid_input(format!(
            "{what} must be 1 to {max} characters without control characters"
        )));
    }
    Ok(())
}

impl Catalog {
    /// Place a legal hold. Retention and `csal rm` skip what it covers.
    pub async fn add_hold(&self, hold: NewHold) -> Result<LegalHold> {
        check_key("camera id", &hold.camera_id)?;
        check_text("the reason of a hold", &hold.reason, 500)?;
        check_text("who set the hold", &hold.created_by, 200)?;
        if let (Some(f), Some(t)) = (hold.from_ms, hold.to_ms)
            && f >= t
        {
            return Err(StorageError::invalid_input("a hold's 'from' must be before its 'to'"));
        }
        let id = ulid::Ulid::new().to_string();
        sqlx::query(&format!("INSERT INTO legal_holds ({HOLD_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
            .bind(&id)
            .bind(&hold.camera_id)
            .bind(hold.from_ms)
            .bind(hold.to_ms)
            .bind(hold.reason.trim())
            .bind(hold.created_by.trim())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(|e| map_sqlx(e, self.backend(), "place legal hold"))?;
        tracing::info!(hold = %id, camera = %hold.camera_id, by = %hold.created_by, "legal hold placed");
        self.hold(&id).await?.ok_or_else(|| StorageError::permanent("placed hold vanished"))
    }

    /// One hold by id.
    pub async fn hold(&self, id: &str) -> Result<Option<LegalHold>> {
        let row = sqlx::query(&format!("SELECT {HOLD_COLS} FROM legal_holds WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| map_sqlx(e, self.backend(), "read legal hold"))?;
        row.map(|r| parse_hold(&r, self)).transpose()
    }

    /// Lift a hold (`NotFound` if there is none with that id).
    pub async fn remove_hold(&self, id: &str) -> Result<LegalHold> {
        let hold =
            self.hold(id).await?.ok_or_else(|| StorageError::not_found(format!("no legal hold with id '{id}'")))?;
        sqlx::query("DELETE FROM legal_holds WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(|e| map_sqlx(e, self.backend(), "lift legal hold"))?;
        tracing::info!(hold = %id, camera = %hold.camera_id, "legal hold lifted");
        Ok(hold)
    }

    /// Holds of one camera, or of all, oldest first.
    pub async fn list_holds(&self, camera_id: Option<&str>) -> Result<Vec<LegalHold>> {
        let rows = match camera_id {
            Some(c) => {
                sqlx::query(&format!("SELECT {HOLD_COLS} FROM legal_holds WHERE camera_id = $1 ORDER BY created_ms"))
                    .bind(c)
                    .fetch_all(self.pool())
                    .await
            }
            None => {
                sqlx::query(&format!("SELECT {HOLD_COLS} FROM legal_holds ORDER BY camera_id, created_ms"))
                    .fetch_all(self.pool())
                    .await
            }
        }
        .map_err(|e| map_sqlx(e, self.backend(), "list legal holds"))?;
        rows.iter().map(|r| parse_hold(r, self)).collect()
    }

    /// The segment a target's object belongs to, if the index knows it.
    pub async fn segment_of_object(&self, target: &str, object_id: &str) -> Result<Option<SegmentRecord>> {
        let row = sqlx::query("SELECT segment_id FROM segment_copies WHERE target = $1 AND object_id = $2")
            .bind(target)
            .bind(object_id)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| map_sqlx(e, self.backend(), "find the segment of an object"))?;
        match row {
            Some(r) => {
                let id: String = r.try_get("segment_id").map_err(|e| map_sqlx(e, self.backend(), "read copy"))?;
                self.segment_by_id(&id).await
            }
            None => Ok(None),
        }
    }

    /// Refuse with `InvalidInput` naming the hold when one covers the
    /// segment that `object_id` on `target` belongs to (for `csal rm`).
    pub async fn check_not_held(&self, target: &str, object_id: &str) -> Result<()> {
        let Some(seg) = self.segment_of_object(target, object_id).await? else { return Ok(()) };
        let holds = self.list_holds(Some(&seg.camera_id)).await?;
        match holds.iter().find(|h| h.covers(seg.start_ms, seg.end_ms)) {
            Some(h) => Err(StorageError::invalid_input(format!(
                "object '{object_id}' is segment '{}' of camera '{}', which is under {}; lift the hold first",
                seg.name,
                seg.camera_id,
                h.describe()
            ))),
            None => Ok(()),
        }
    }

    // --------------------------------------------------------------- leases

    /// Take (or renew) the lease `name` for `ttl_ms` if nobody else holds an
    /// unexpired one. `true`: `holder` has it until now + ttl.
    pub async fn try_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO csal_leases (name, holder, expires_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms \
             WHERE csal_leases.expires_ms < $4 OR csal_leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(ttl_ms))
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(|e| map_sqlx(e, self.backend(), "take a job lease"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Give the lease up (if `holder` has it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM csal_leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await
            .map_err(|e| map_sqlx(e, self.backend(), "release a job lease"))?;
        Ok(())
    }

    // ------------------------------------------------------------ retention

    /// A camera's delivered segments ending before `before_ms`, oldest
    /// first, after `(start_ms, name)`.
    pub async fn segments_ending_before(
        &self,
        camera_id: &str,
        before_ms: i64,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<SegmentRecord>> {
        let (after_start, after_name) = after.unwrap_or((i64::MIN, String::new()));
        let sql = format!(
            "SELECT {} FROM segments WHERE camera_id = $1 AND end_ms < $2 AND spooled = 0 \
             AND (start_ms > $3 OR (start_ms = $3 AND name > $4)) ORDER BY start_ms, name LIMIT $5",
            crate::segments::SEGMENT_COLS
        );
        let rows = sqlx::query(&sql)
            .bind(camera_id)
            .bind(before_ms)
            .bind(after_start)
            .bind(after_name)
            .bind(i64::from(limit.max(1)))
            .fetch_all(self.pool())
            .await
            .map_err(|e| map_sqlx(e, self.backend(), "find expired segments"))?;
        rows.iter().map(|r| self.parse_segment(r)).collect()
    }

    /// Bytes a camera's segments take on its targets (each stored copy
    /// counted).
    pub async fn camera_stored_bytes(&self, camera_id: &str) -> Result<u64> {
        let row =
            sqlx::query("SELECT CAST(SUM(size * copies_stored) AS BIGINT) AS b FROM segments WHERE camera_id = $1")
                .bind(camera_id)
                .fetch_one(self.pool())
                .await
                .map_err(|e| map_sqlx(e, self.backend(), "sum a camera's bytes"))?;
        let b: Option<i64> = row.try_get("b").map_err(|e| map_sqlx(e, self.backend(), "sum a camera's bytes"))?;
        Ok(u64::try_from(b.unwrap_or(0)).unwrap_or(0))
    }

    /// The journal rows of several segments (one query), by segment.
    pub async fn copies_of(
        &self,
        segment_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, Vec<crate::SegmentCopy>>> {
        let mut out: std::collections::HashMap<String, Vec<crate::SegmentCopy>> = Default::default();
        for chunk in segment_ids.chunks(BATCH) {
            let sql = format!(
                "SELECT {} FROM segment_copies WHERE segment_id IN ({}) ORDER BY segment_id, target",
                crate::segments::COPY_COLS,
                placeholders(1, chunk.len(), 1)
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            let rows =
                query.fetch_all(self.pool()).await.map_err(|e| map_sqlx(e, self.backend(), "read segment copies"))?;
            for row in &rows {
                let copy = self.parse_copy(row)?;
                out.entry(copy.segment_id.clone()).or_default().push(copy);
            }
        }
        Ok(out)
    }

    /// Mark copies as about to be deleted: `(segment_id, target)` pairs.
    pub async fn mark_copies_deleting(&self, copies: &[(String, String)]) -> Result<()> {
        let err = |e| map_sqlx(e, self.backend(), "mark copies for deletion");
        let mut tx = self.pool().begin().await.map_err(err)?;
        for chunk in copies.chunks(BATCH) {
            let sql = format!(
                "UPDATE segment_copies SET state = 'delete_pending', updated_ms = $1 \
                 WHERE (segment_id, target) IN (VALUES {})",
                placeholders(2, chunk.len(), 2)
            );
            let mut query = sqlx::query(&sql).bind(now_ms());
            for (segment, target) in chunk {
                query = query.bind(segment).bind(target);
            }
            query.execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    /// Copies the targets confirmed deleted: their rows go, the segments'
    /// counts follow, and a segment left without any copy row goes too
    /// (when `drop_empty`). One transaction; returns the segments removed.
    pub async fn copies_deleted(&self, copies: &[(String, String)], drop_empty: bool) -> Result<u64> {
        let err = |e| map_sqlx(e, self.backend(), "record deleted copies");
        let mut tx = self.pool().begin().await.map_err(err)?;
        let mut dropped = 0;
        for chunk in copies.chunks(BATCH) {
            let sql = format!(
                "DELETE FROM segment_copies WHERE (segment_id, target) IN (VALUES {})",
                placeholders(1, chunk.len(), 2)
            );
            let mut query = sqlx::query(&sql);
            for (segment, target) in chunk {
                query = query.bind(segment).bind(target);
            }
            query.execute(&mut *tx).await.map_err(err)?;
            let mut segments: Vec<&str> = chunk.iter().map(|(s, _)| s.as_str()).collect();
            segments.sort_unstable();
            segments.dedup();
            let ids = placeholders(1, segments.len(), 1);
            let recount = format!(
                "UPDATE segments SET copies_stored = (SELECT COUNT(*) FROM segment_copies c \
                 WHERE c.segment_id = segments.id AND c.state = 'stored') WHERE id IN ({ids})"
            );
            let mut query = sqlx::query(&recount);
            for id in &segments {
                query = query.bind(*id);
            }
            query.execute(&mut *tx).await.map_err(err)?;
            if drop_empty {
                let drop = format!(
                    "DELETE FROM segments WHERE id IN ({ids}) AND spooled = 0 \
                     AND NOT EXISTS (SELECT 1 FROM segment_copies c WHERE c.segment_id = segments.id)"
                );
                let mut query = sqlx::query(&drop);
                for id in &segments {
                    query = query.bind(*id);
                }
                dropped += query.execute(&mut *tx).await.map_err(err)?.rows_affected();
            }
        }
        tx.commit().await.map_err(err)?;
        Ok(dropped)
    }

    /// Deletes that failed: the copies stay `delete_pending` with the
    /// reason, `(segment_id, target, error)`. One transaction.
    pub async fn copies_delete_failed(&self, failed: &[(String, String, String)]) -> Result<()> {
        self.journal_refused_deletes(failed, "", "journal failed deletes").await
    }

    /// Deletes the target refused because the provider locks the object (a
    /// server-side legal hold or retention): the bytes are intact, so the
    /// copies are `stored` again, with the reason, `(segment_id, target,
    /// reason)`. One transaction.
    pub async fn copies_locked(&self, locked: &[(String, String, String)]) -> Result<()> {
        self.journal_refused_deletes(locked, "state = 'stored', ", "journal locked copies").await
    }

    /// The reason (first 1000 characters) of each refused delete, plus
    /// `set_state` (SQL, a constant of the callers above).
    async fn journal_refused_deletes(
        &self,
        rows: &[(String, String, String)],
        set_state: &'static str,
        what: &'static str,
    ) -> Result<()> {
        let err = |e| map_sqlx(e, self.backend(), what);
        let sql = format!(
            "UPDATE segment_copies SET {set_state}last_error = $1, updated_ms = $2 WHERE segment_id = $3 AND target = $4"
        );
        let mut tx = self.pool().begin().await.map_err(err)?;
        for (segment, target, reason) in rows {
            let reason: String = reason.chars().take(1000).collect();
            sqlx::query(&sql)
                .bind(reason)
                .bind(now_ms())
                .bind(segment)
                .bind(target)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }
}

/// Rows handled per statement. Small: binding costs grow faster than the
/// number of parameters in one statement (see `bulk.rs`; the retention
/// bench measured the sweep at 400 and at 50).
const BATCH: usize = 50;

/// `$first, $first+1, ...` for `rows` values, or `($a, $b), ...` tuples of
/// `width` when `width > 1`.
pub(crate) fn placeholders(first: usize, rows: usize, width: usize) -> String {
    let mut out = String::new();
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        let cols: Vec<String> = (0..width).map(|c| format!("${}", first + r * width + c)).collect();
        if width == 1 {
            out.push_str(&cols[0]);
        } else {
            out.push_str(&format!("({})", cols.join(", ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_values_and_tuples() {
        assert_eq!(super::placeholders(1, 3, 1), "$1, $2, $3");
        assert_eq!(super::placeholders(2, 2, 2), "($2, $3), ($4, $5)");
        assert_eq!(super::placeholders(1, 0, 2), "");
    }
}
