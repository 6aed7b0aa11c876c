//! Streaming write: the body is cut into 1 MiB parts, each inserted as one
//! chunk row, all inside one transaction. Memory holds one part; a failed
//! body or database error rolls everything back, so nothing is left behind.

use csal_core::{ByteStream, Checksum, Result, WriteMeta, WriteReceipt, object_id_from_hint};
use futures::StreamExt;

use crate::config::CHUNK_SIZE;
use crate::tables::{Db, now_ms};

pub(crate) async fn write_object(db: &Db, instance: &str, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
    let object_id = object_id_from_hint(&meta.key_hint);
    let err = db.err("write object");
    let metadata_json = serde_json::to_string(&meta.metadata).unwrap_or_else(|_| "{}".to_owned());

    let mut tx = db.pool.begin().await.map_err(&err)?;
    // The first statement writes, so SQLite takes its write lock right away
    // (no read-to-write upgrade that could fail with BUSY later).
    sqlx::query(&format!(
        "INSERT INTO {} (object_id, size, chunk_size, chunk_count, content_type, metadata_json, checksum, modified_ms) \
         VALUES ($1, 0, $2, 0, $3, $4, NULL, $5)",
        db.objects
    ))
    .bind(&object_id)
    .bind(CHUNK_SIZE as i64)
    .bind(meta.content_type.clone())
    .bind(&metadata_json)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(&err)?;

    let insert_chunk = format!("INSERT INTO {} (object_id, seq, data) VALUES ($1, $2, $3)", db.chunks);
    let mut parts = std::pin::pin!(body.into_parts(CHUNK_SIZE));
    let mut size = 0u64;
    let mut seq = 0i64;
    let mut crc = 0u32;
    while let Some(part) = parts.next().await {
        let part = match part {
            Ok(p) => p,
            Err(e) => {
                // Explicit rollback; dropping the transaction would do it too.
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        crc = csal_core::crc32c_append(crc, &part);
        size += part.len() as u64;
        sqlx::query(&insert_chunk)
            .bind(&object_id)
            .bind(seq)
            .bind(part.to_vec())
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        seq += 1;
    }
    let checksum = format!("{crc:08x}");
    sqlx::query(&format!(
        "UPDATE {} SET size = $1, chunk_count = $2, checksum = $3, modified_ms = $4 WHERE object_id = $5",
        db.objects
    ))
    .bind(size as i64)
    .bind(seq)
    .bind(&checksum)
    .bind(now_ms())
    .bind(&object_id)
    .execute(&mut *tx)
    .await
    .map_err(&err)?;
    tx.commit().await.map_err(&err)?;
    tracing::debug!(instance = %instance, object_id = %object_id, size, "db write committed");
    Ok(WriteReceipt { object_id, size, checksum: Some(Checksum::crc32c(crc)), etag: Some(checksum), instance: None })
}
