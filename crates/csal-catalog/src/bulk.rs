//! Indexing segments that are already stored, many at a time: recordings
//! adopted from a target, imports, and benchmarks that need a million rows
//! without a million ingests. One transaction; multi-row inserts.

use csal_core::{ErrorKind, Result, StorageError};
use csal_sql::map_sqlx;

use crate::Catalog;
use crate::records::now_ms;
use crate::segments::{COPY_COLS, NewSegment, SEGMENT_COLS};

/// Rows per INSERT statement. Small on purpose: binding costs grow faster
/// than the number of parameters in one statement (measured on SQLite
/// through sqlx: 1,203 rows took 645 ms at 500 rows a statement, 67 ms at
/// 25), while 25 rows already save most of the per-statement cost.
const ROWS_PER_INSERT: usize = 25;

/// A segment whose copies are already stored, for [`Catalog::index_stored_segments`].
#[derive(Debug, Clone)]
pub struct StoredSegment {
    pub segment: NewSegment,
    /// `(target, object id)` of each stored copy.
    pub copies: Vec<(String, String)>,
}

/// `($1, ..., $k), ($k+1, ...)`: `rows` groups of `per_row` placeholders,
/// with `literals` spliced in after the given positions of each group.
fn placeholders(rows: usize, per_row: usize, literals: &[(usize, &str)]) -> String {
    let mut out = String::new();
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..per_row {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", r * per_row + c + 1));
            for (_, lit) in literals.iter().filter(|(after, _)| *after == c) {
                out.push_str(", ");
                out.push_str(lit);
            }
        }
        out.push(')');
    }
    out
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
            // Columns as SEGMENT_COLS; `spooled` (after node_id, the 11th)
            // is the literal 0.
            let sql = format!("INSERT INTO segments ({SEGMENT_COLS}) VALUES {}", placeholders(chunk.len(), 15, &[(10, "0")]));
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
                // COPY_COLS with state 'stored', attempts 1, no error.
                let sql = format!(
                    "INSERT INTO segment_copies ({COPY_COLS}) VALUES {}",
                    placeholders(rows.len(), 5, &[(1, "'stored'"), (3, "1, NULL")])
                );
                let mut q = sqlx::query(&sql);
                for (segment, target, object) in rows {
                    q = q.bind(*segment).bind(*target).bind(*object).bind(*object).bind(now);
                }
                q.execute(&mut *tx).await.map_err(err)?;
            }
        }
        tx.commit().await.map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_rows_and_splice_literals() {
        assert_eq!(placeholders(2, 2, &[(0, "'x'")]), "($1, 'x', $2), ($3, 'x', $4)");
        assert_eq!(placeholders(1, 3, &[(1, "0"), (2, "1, NULL")]), "($1, $2, 0, $3, 1, NULL)");
    }
}
