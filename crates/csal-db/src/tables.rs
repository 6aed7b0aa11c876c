//! The database of one `db` instance: its pool, its two tables (created on
//! first use), and the object rows (used by module.rs, write.rs, list.rs).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use csal_core::{Checksum, ObjectMeta, Result, StorageError};
use csal_sql::{Backend, DbLocation, map_sqlx};
use sqlx::{AnyPool, Row};

/// The open database and the SQL text of this instance's tables.
pub(crate) struct Db {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) objects: String,
    pub(crate) chunks: String,
}

impl Db {
    pub(crate) fn err(&self, what: &str) -> impl Fn(sqlx::Error) -> StorageError + '_ {
        let what = what.to_owned();
        move |e| map_sqlx(e, self.backend, &what)
    }

    /// Open the pool, create the tables if missing, and check that they are
    /// writable. `instance` names the instance in logs.
    pub(crate) async fn open(
        location: &DbLocation,
        max_connections: u32,
        connect_timeout: Duration,
        table_prefix: &str,
        instance: &str,
    ) -> Result<Db> {
        let pool = location.connect(max_connections, connect_timeout).await?;
        let backend = location.backend;
        let p = table_prefix;
        let db = Db { pool, backend, objects: format!("{p}objects"), chunks: format!("{p}chunks") };
        let (text, int, blob) = match backend {
            Backend::Sqlite => ("TEXT", "INTEGER", "BLOB"),
            Backend::Postgres => ("TEXT COLLATE \"C\"", "BIGINT", "BYTEA"),
        };
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS {o} (object_id {text} PRIMARY KEY NOT NULL, size {int} NOT NULL, \
                 chunk_size {int} NOT NULL, chunk_count {int} NOT NULL, content_type TEXT, metadata_json TEXT NOT NULL, \
                 checksum TEXT, modified_ms {int} NOT NULL)",
                o = db.objects
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {c} (object_id {text} NOT NULL, seq {int} NOT NULL, data {blob} NOT NULL, \
                 PRIMARY KEY (object_id, seq))",
                c = db.chunks
            ),
            format!("CREATE INDEX IF NOT EXISTS {o}_modified ON {o} (modified_ms)", o = db.objects),
        ];
        for sql in &statements {
            // Two nodes creating the same table at once can race on PostgreSQL's
            // catalog; the loser sees a unique violation and simply retries.
            let mut tries = 0;
            loop {
                match sqlx::query(sql).execute(&db.pool).await {
                    Ok(_) => break,
                    Err(e) if tries < 3 && csal_sql::classify(&e, backend) == csal_core::ErrorKind::AlreadyExists => {
                        tries += 1
                    }
                    Err(e) => return Err(map_sqlx(e, backend, "create the object tables")),
                }
            }
        }
        // Write probe: a store we may read but not write (SQLite opened
        // read-only, a PostgreSQL role without UPDATE) fails here with Auth,
        // rather than halfway through the first recording.
        sqlx::query(&format!("UPDATE {} SET size = size WHERE object_id = ''", db.objects))
            .execute(&db.pool)
            .await
            .map_err(|e| map_sqlx(e, backend, "check write access to the object tables"))?;
        tracing::debug!(instance = %instance, url = %location.display_url(), "db provider ready");
        Ok(db)
    }

    /// An object's row: its metadata, chunk size and chunk count.
    pub(crate) async fn stat_row(&self, object_id: &str) -> Result<(ObjectMeta, i64, i64)> {
        let db = self;
        let sql = format!(
            "SELECT object_id, size, chunk_size, chunk_count, content_type, metadata_json, checksum, modified_ms \
             FROM {} WHERE object_id = $1",
            db.objects
        );
        let row = sqlx::query(&sql)
            .bind(object_id)
            .fetch_optional(&db.pool)
            .await
            .map_err(db.err("stat object"))?
            .ok_or_else(|| StorageError::not_found(format!("no object '{object_id}'")))?;
        let meta = row_to_meta(db, &row)?;
        let chunk_size: i64 = row.try_get("chunk_size").map_err(db.err("stat object"))?;
        let chunk_count: i64 = row.try_get("chunk_count").map_err(db.err("stat object"))?;
        Ok((meta, chunk_size, chunk_count))
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub(crate) fn ms_to_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

pub(crate) fn row_to_meta(db: &Db, row: &sqlx::any::AnyRow) -> Result<ObjectMeta> {
    let err = db.err("decode object row");
    let object_id: String = row.try_get("object_id").map_err(&err)?;
    let size: i64 = row.try_get("size").map_err(&err)?;
    let content_type: Option<String> = row.try_get("content_type").map_err(&err)?;
    let metadata_json: String = row.try_get("metadata_json").map_err(&err)?;
    let checksum: Option<String> = row.try_get("checksum").map_err(&err)?;
    let modified_ms: i64 = row.try_get("modified_ms").map_err(&err)?;
    let metadata: BTreeMap<String, String> = serde_json::from_str(&metadata_json).unwrap_or_default();
    let mut meta = ObjectMeta::new(object_id, size.max(0) as u64);
    meta.modified = Some(ms_to_time(modified_ms));
    meta.content_type = content_type;
    meta.metadata = metadata;
    meta.checksum = checksum.map(|value| Checksum { algorithm: "crc32c".into(), value });
    meta.etag = meta.checksum.as_ref().map(|c| c.value.clone());
    Ok(meta)
}
