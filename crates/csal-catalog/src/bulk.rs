//! Indexing segments that are already stored, many at a time: recordings
//! adopted from a target, imports, and benchmarks that need a million rows
//! without a million ingests. One transaction; multi-row inserts.

use csal_core::{ErrorKind, Result, StorageError};
use csal_sql::map_sqlx;

use crate::Catalog;
use crate::records::now_ms;
use crate::retention::placeholders;
use crate::segments::{COPY_COLS, NewSegment, SEGMENT_COLS};

/// Rows per INSERT statement. Small on purpose: binding costs grow faster
/// than the number of parameters in one statement (measured on SQLite
/// through sqlx: 1,203 rows took 645 ms at 500 rows a statement, 67 ms at
/// 25), while 25 rows already save most of the per-statement cost.
const ROWS_PER_INSERT: usize = 25;

/// A segment whose copies are already stored, for [`Catalog::index_stored_segments`].
#[derive(Debug, Clone)]
pub struct StoredSegment {
    /// The segment's index row (its `copies_required` counts the copies below).
    pub segment: NewSegment,
    /// `(target, object id)` of each stored copy.
    pub copies: Vec<(String, String)>,
}

impl Catalog {
    /// Index segments whose copies are already stored on their targets, in
    /// one transaction: as delivered (`copies_stored` counted, out of any
    /// spool) with `stored` journal rows. `AlreadyExists` (and nothing
    /// indexed) when a camera already has a segment of one of the names.
    pub async fn index_stored_segments(&self, segments: &[StoredSegment]) -> Result<()> {
        let err = |e| map_sqlx(e, self.backend(), "index stored segments");
        let now = now_ms();
        let mut tx = self.pool().begin().await.map_err(err)?;
        for chunk in segments.chunks(ROWS_PER_INSERT) {
            let sql = format!("INSERT INTO segments ({SEGMENT_COLS}) VALUES {}", placeholders(1, chunk.len(), 16));
            let mut q = sqlx::query(&sql);
            for s in chunk {
                let n = &s.segment;
                let size = i64::try_from(n.size).map_err(|_| StorageError::invalid_input("segment is too large"))?;
                q = q
                    .bind(n.id.clone())
                    .bind(n.camera_id.clone())
                    .bind(n.name.clone())
                    .bind(n.start_ms)
                    .bind(n.start_ms.saturating_add(n.duration_ms.unwrap_or(0).max(0)))
                    .bind(n.duration_ms)
                    .bind(n.time_source.as_str())
                    .bind(size)
                    .bind(format!("{:08x}", n.crc32c))
                    .bind(n.content_type.clone())
                    .bind(n.node_id.clone())
                    .bind(0i64) // spooled: the bytes are on the targets
                    .bind(i64::from(n.copies_required.max(1)))
                    .bind(s.copies.len() as i64)
                    .bind(now)
                    .bind(now);
            }
            q.execute(&mut *tx).await.map_err(|e| match err(e) {
                e if e.kind() == ErrorKind::AlreadyExists => {
                    StorageError::already_exists("a camera already has a segment of one of these names")
                }
                e => e,
            })?;
            let copies: Vec<(&str, &str, &str)> = chunk
                .iter()
                .flat_map(|s| s.copies.iter().map(|(t, o)| (s.segment.id.as_str(), t.as_str(), o.as_str())))
                .collect();
            for rows in copies.chunks(ROWS_PER_INSERT) {
                let sql = format!("INSERT INTO segment_copies ({COPY_COLS}) VALUES {}", placeholders(1, rows.len(), 8));
                let mut q = sqlx::query(&sql);
                for (segment, target, object) in rows {
                    // COPY_COLS: stored, key hint = object id, one attempt, no error.
                    q = q
                        .bind(*segment)
                        .bind(*target)
                        .bind("stored")
                        .bind(*object)
                        .bind(*object)
                        .bind(1i64)
                        .bind(None::<String>)
                        .bind(now);
                }
                q.execute(&mut *tx).await.map_err(err)?;
            }
        }
        tx.commit().await.map_err(err)
    }
}
