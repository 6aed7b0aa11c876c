//! The `db` [`StorageModule`]: thin, delegates to `write.rs` and `list.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use csal_core::{
    ByteRange, ByteStream, Capabilities, Checksum, HealthReport, ListPage, ListRequest, ObjectMeta, Result,
    StorageError, StorageModule, WriteMeta, WriteReceipt, check_object_id,
};
use futures::StreamExt;
use sqlx::{AnyPool, Row};
use tokio::sync::OnceCell;

use crate::client::{Backend, DbLocation};
use crate::config::DbConfig;
use crate::error::map_sqlx;

/// One `db` instance. The pool is opened and the tables created on first
/// use (construction never touches the network).
pub struct DbModule {
    pub(crate) instance: String,
    location: DbLocation,
    max_connections: u32,
    connect_timeout: Duration,
    table_prefix: String,
    db: OnceCell<Db>,
}

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
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub(crate) fn ms_to_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

impl DbModule {
    pub fn new(instance: &str, config: DbConfig) -> Result<Self> {
        let location = config.location()?;
        Ok(DbModule {
            instance: instance.to_owned(),
            location,
            max_connections: config.max_connections,
            connect_timeout: Duration::from_secs(config.connect_timeout_secs),
            table_prefix: config.table_prefix,
            db: OnceCell::new(),
        })
    }

    pub(crate) async fn db(&self) -> Result<&Db> {
        self.db.get_or_try_init(|| self.open()).await
    }

    async fn open(&self) -> Result<Db> {
        let pool = self.location.connect(self.max_connections, self.connect_timeout).await?;
        let backend = self.location.backend;
        let p = &self.table_prefix;
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
                    Err(e)
                        if tries < 3 && crate::error::classify(&e, backend) == csal_core::ErrorKind::AlreadyExists =>
                    {
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
        tracing::debug!(instance = %self.instance, url = %self.location.display_url(), "db provider ready");
        Ok(db)
    }

    pub(crate) async fn stat_row(&self, db: &Db, object_id: &str) -> Result<(ObjectMeta, i64, i64)> {
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

#[async_trait]
impl StorageModule for DbModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::OBJECT_STORE
    }

    async fn validate(&self) -> Result<()> {
        let db = self.db().await?;
        let sql = format!("SELECT COUNT(*) AS n FROM {}", db.objects);
        sqlx::query(&sql).fetch_one(&db.pool).await.map_err(db.err("count objects"))?;
        Ok(())
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        crate::write::write_object(self, body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        check_object_id(object_id)?;
        if let Some(r) = range {
            r.check()?;
        }
        let db = self.db().await?;
        let (meta, chunk_size, chunk_count) = self.stat_row(db, object_id).await?;
        let span = match range {
            Some(r) => r.resolve(meta.size)?,
            None => 0..meta.size,
        };
        if span.is_empty() {
            return Ok(ByteStream::empty());
        }
        let chunk_size = chunk_size.max(1) as u64;
        let first = span.start / chunk_size;
        let last = (span.end - 1) / chunk_size;
        if last as i64 >= chunk_count {
            return Err(StorageError::integrity(format!("object '{object_id}' has fewer chunks than its size says")));
        }
        let len = span.end - span.start;
        let sql = format!("SELECT data FROM {} WHERE object_id = $1 AND seq = $2", db.chunks);
        let pool = db.pool.clone();
        let backend = db.backend;
        let id = object_id.to_owned();
        let stream = futures::stream::iter(first..=last).then(move |seq| {
            let (pool, sql, id) = (pool.clone(), sql.clone(), id.clone());
            let span = span.clone();
            async move {
                let row = sqlx::query(&sql)
                    .bind(&id)
                    .bind(seq as i64)
                    .fetch_optional(&pool)
                    .await
                    .map_err(|e| map_sqlx(e, backend, "read object chunk"))?
                    .ok_or_else(|| StorageError::not_found(format!("object '{id}' was deleted while being read")))?;
                let data: Vec<u8> = row.try_get("data").map_err(|e| map_sqlx(e, backend, "read object chunk"))?;
                let chunk_start = seq * chunk_size;
                let from = span.start.saturating_sub(chunk_start).min(data.len() as u64) as usize;
                let to = (span.end - chunk_start).min(data.len() as u64) as usize;
                Ok::<Bytes, StorageError>(Bytes::from(data).slice(from..to.max(from)))
            }
        });
        Ok(ByteStream::new(stream, Some(len)).expect_len(len))
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        check_object_id(object_id)?;
        let db = self.db().await?;
        let err = db.err("delete object");
        let mut tx = db.pool.begin().await.map_err(&err)?;
        sqlx::query(&format!("DELETE FROM {} WHERE object_id = $1", db.objects))
            .bind(object_id)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::query(&format!("DELETE FROM {} WHERE object_id = $1", db.chunks))
            .bind(object_id)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(())
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        crate::list::list_objects(self, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        check_object_id(object_id)?;
        let db = self.db().await?;
        Ok(self.stat_row(db, object_id).await?.0)
    }

    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        let result = async {
            let db = self.db().await?;
            sqlx::query("SELECT 1").execute(&db.pool).await.map_err(db.err("health check"))?;
            Ok::<Backend, StorageError>(db.backend)
        }
        .await;
        match result {
            Ok(backend) => HealthReport::ok(started.elapsed()).with_detail("backend", backend.to_string()),
            Err(e) => HealthReport::offline(&e),
        }
    }

    async fn shutdown(&self) -> Result<()> {
        if let Some(db) = self.db.get() {
            db.pool.close().await;
        }
        Ok(())
    }
}
