//! The `db` [`StorageModule`]: thin, delegates to `write.rs` and `list.rs`.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use csal_core::{
    ByteRange, ByteStream, Capabilities, HealthReport, ListPage, ListRequest, ObjectMeta, Result, StorageError,
    StorageModule, WriteMeta, WriteReceipt,
};
use futures::StreamExt;
use sqlx::Row;
use tokio::sync::OnceCell;

use csal_sql::{Backend, DbLocation, map_sqlx};

use crate::config::DbConfig;
use crate::tables::Db;

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

impl DbModule {
    /// A module on the database `config` names; the pool opens lazily, on first use.
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
        self.db
            .get_or_try_init(|| {
                Db::open(&self.location, self.max_connections, self.connect_timeout, &self.table_prefix, &self.instance)
            })
            .await
    }
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
        crate::write::write_object(self.db().await?, &self.instance, body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        if let Some(r) = range {
            r.check()?;
        }
        let db = self.db().await?;
        let (meta, chunk_size, chunk_count) = db.stat_row(object_id).await?;
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
        crate::list::list_objects(self.db().await?, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        let db = self.db().await?;
        Ok(db.stat_row(object_id).await?.0)
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
