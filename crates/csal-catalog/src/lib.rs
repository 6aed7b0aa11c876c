//! # csal-catalog
//!
//! The catalog of storage instances (the seed's `storage_modules` table),
//! camera storage policies and a few admin settings, in an embedded SQLite
//! file (default, created on first use) or a shared PostgreSQL database.
//!
//! - every change is validated against the provider's config spec and made
//!   in one transaction;
//! - secret config fields are sealed with XChaCha20-Poly1305 under a master
//!   key (see [`MasterKey`]); listings never show them;
//! - [`Catalog::router`] is a live [`StorageRouter`]: this process's edits
//!   apply at once, other nodes' within the poll interval (1 s by default),
//!   by watching a change counter bumped in every write transaction;
//! - [`Catalog::write_for_camera`] routes a recording through the camera's
//!   ordered targets with fail-over.
//!
//! See docs/catalog.md for the schema, migrations, key handling and
//! multi-node setup.
#![warn(missing_docs)]

mod bandwidth;
mod bulk;
mod crypto;
mod health;
pub mod import;
mod keys;
mod migrate;
mod modules;
mod policy;
mod records;
mod retention;
mod segments;
mod sessions;
mod settings;
mod tokens;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use csal_core::{ErrorKind, LayerConfig, ReloadSummary, Result, StorageError, StorageRouter};
use csal_sql::{Backend, DbLocation, map_sqlx};
use sqlx::{AnyConnection, AnyPool, Row};
use tokio::sync::watch;

pub use bandwidth::NODE_LIMIT;
pub use bulk::StoredSegment;
pub use crypto::{MASTER_KEY_ENV, MasterKey};
pub use migrate::SCHEMA_VERSION;
pub use policy::{AppliedPolicy, CameraPolicy, DEFAULT_POLICY, TierRule};
pub use records::{CameraWrite, ModuleRecord, ModuleUpdate, NewModule, check_module_name};
pub use retention::{LegalHold, NewHold};
pub use segments::{
    CameraSummary, CopyState, MAX_SEGMENT_PAGE, NewSegment, NodeSpool, SegmentCopy, SegmentQuery, SegmentRecord,
    TargetUsage, TimeSource, time_to_ms,
};
pub use sessions::{SessionLimits, SessionRecord};
pub use tokens::{ApiTokenInfo, LEGACY_TOKENS_SETTING, TokenScope, random_token};

use crypto::Cipher;
use keys::{check_key_matches, check_or_set_key, key_matches, read_key_check};

/// Knobs for [`Catalog::open_with`].
///
/// `#[non_exhaustive]`: more knobs will come; start from
/// `CatalogOptions::default()` and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CatalogOptions {
    /// How often to look for changes made by other nodes.
    pub poll_interval: Duration,
    /// Layers (timeouts, retries) of the router's instances.
    pub layers: LayerConfig,
    /// Connection pool size.
    pub max_connections: u32,
    /// How long to wait for a database connection.
    pub connect_timeout: Duration,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        CatalogOptions {
            poll_interval: Duration::from_secs(1),
            layers: LayerConfig::default(),
            max_connections: 5,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// The catalog. Cheap to clone (one shared state inside).
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    display_url: String,
    cipher: RwLock<Arc<Cipher>>,
    /// The key a rotation in this process is about to commit: a write whose
    /// transaction already sees the rotated catalog seals with it.
    rotating_to: RwLock<Option<Arc<Cipher>>>,
    router: Arc<StorageRouter>,
    reload_lock: tokio::sync::Mutex<()>,
    /// The change counter the router was last loaded at.
    applied: watch::Sender<i64>,
    poller: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    closed: AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut p) = self.poller.lock()
            && let Some(handle) = p.take()
        {
            handle.abort();
        }
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("url", &self.inner.display_url).finish_non_exhaustive()
    }
}

/// The router's [`csal_core::ConfigSink`]: a weak handle, so the router
/// (owned by the catalog) does not keep the catalog alive.
struct CatalogConfigSink(std::sync::Weak<Inner>);

#[async_trait::async_trait]
impl csal_core::ConfigSink for CatalogConfigSink {
    async fn save_config_changes(
        &self,
        instance_id: &str,
        changes: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let inner =
            self.0.upgrade().ok_or_else(|| StorageError::new(ErrorKind::Unavailable, "the catalog is closed"))?;
        Catalog { inner }.save_config_changes(instance_id, changes).await
    }
}

const MODULE_COLS: &str = "id, name, label, provider_type, is_enabled, config_json, created_at, updated_at";
const KEY_CHECK_PLAINTEXT: &str = "csal-catalog master key check";
const KEY_CHECK_AAD: &str = "csal:key-check";
const ENC: &str = "$enc";

impl Catalog {
    /// Open (creating it if needed) the catalog at `url`: `sqlite://path`,
    /// a bare file path, or `postgres://...`. Runs migrations, checks the
    /// master key against the catalog, loads the router and starts watching
    /// for other nodes' changes.
    pub async fn open(url: &str, key: MasterKey) -> Result<Catalog> {
        Self::open_with(url, key, CatalogOptions::default()).await
    }

    /// [`Catalog::open`] with options.
    pub async fn open_with(url: &str, key: MasterKey, options: CatalogOptions) -> Result<Catalog> {
        let location = DbLocation::parse(url, None, true)?;
        let cipher = key.load()?;
        let pool = location.connect(options.max_connections, options.connect_timeout).await?;
        let backend = location.backend;
        migrate::run(&pool, backend).await?;
        check_or_set_key(&pool, backend, &cipher).await?;
        let (applied, _) = watch::channel(-1);
        let inner = Arc::new_cyclic(|weak| Inner {
            pool,
            backend,
            display_url: location.display_url().to_owned(),
            cipher: RwLock::new(Arc::new(cipher)),
            rotating_to: RwLock::new(None),
            router: Arc::new(StorageRouter::with_config_sink(
                &[],
                options.layers.clone(),
                Some(Arc::new(CatalogConfigSink(weak.clone()))),
            )),
            reload_lock: tokio::sync::Mutex::new(()),
            applied,
            poller: std::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        let catalog = Catalog { inner };
        tokens::import_legacy_tokens(&catalog).await?;
        catalog.reload_router().await?;
        let handle = tokio::spawn(poll_changes(Arc::downgrade(&catalog.inner), options.poll_interval));
        if let Ok(mut p) = catalog.inner.poller.lock() {
            *p = Some(handle);
        }
        tracing::info!(url = %catalog.inner.display_url, "catalog opened");
        Ok(catalog)
    }

    /// Which database this catalog lives in.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The catalog URL with any password masked.
    pub fn display_url(&self) -> &str {
        &self.inner.display_url
    }

    fn cipher(&self) -> Arc<Cipher> {
        self.inner.cipher.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set_rotating_to(&self, cipher: Option<Arc<Cipher>>) {
        match self.inner.rotating_to.write() {
            Ok(mut c) => *c = cipher,
            Err(p) => *p.into_inner() = cipher,
        }
    }

    /// The key to seal with inside write transaction `tx`: the catalog's
    /// current key (its key check, read under the write lock), which must be
    /// this node's. A node whose key was rotated away on another node is
    /// refused, so it never seals a value the others cannot open.
    async fn cipher_for_write(&self, tx: &mut AnyConnection) -> Result<Arc<Cipher>> {
        let check = read_key_check(tx, self.inner.backend).await?;
        let current = self.cipher();
        if key_matches(&current, &check) {
            return Ok(current);
        }
        let rotating = self.inner.rotating_to.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone());
        match rotating {
            Some(next) if key_matches(&next, &check) => Ok(next),
            _ => Err(StorageError::auth(format!(
                "this node's master key ({}) is not the catalog's current key ({}): it was rotated on another \
                 node; give this node the new key ({MASTER_KEY_ENV} or the key file) and restart it. Nothing was \
                 changed",
                current.key_id(),
                Cipher::key_id_of(&check).unwrap_or("another key")
            ))),
        }
    }

    fn err(&self, what: &str) -> impl Fn(sqlx::Error) -> StorageError + use<> {
        let (backend, what) = (self.inner.backend, what.to_owned());
        move |e| map_sqlx(e, backend, &what)
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        self.inner.pool.acquire().await.map_err(self.err("connect to the catalog"))
    }

    /// Begin a write transaction. Its first statement bumps the change
    /// counter: that takes SQLite's write lock (and PostgreSQL's row lock)
    /// at once, serialising catalog writers, and tells other nodes to reload.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let err = self.err("start a catalog transaction");
        let mut tx = self.inner.pool.begin().await.map_err(&err)?;
        sqlx::query("UPDATE csal_catalog_state SET change_seq = change_seq + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        Ok(tx)
    }

    async fn commit(&self, tx: sqlx::Transaction<'static, sqlx::Any>, what: &str) -> Result<()> {
        tx.commit().await.map_err(self.err(what))
    }

    /// After one of our own changes: reload now (errors are logged; the
    /// change itself is committed).
    async fn after_change(&self) {
        if let Err(e) = self.reload_router().await {
            tracing::warn!(error = %e, "router reload after a catalog change failed");
        }
    }

    // ----------------------------------------------------------------- router

    /// The live router (kept in sync with the catalog).
    pub fn router(&self) -> Arc<StorageRouter> {
        self.inner.router.clone()
    }

    /// Reload the router from the catalog now.
    pub async fn reload_router(&self) -> Result<ReloadSummary> {
        let _guard = self.inner.reload_lock.lock().await;
        // Read the counter before the rows: a change committed in between is
        // seen again by the next poll rather than missed.
        let seq = self.change_seq().await?;
        // A node whose key was rotated away keeps the instances it has
        // (every row would fail to open) until it gets the new key.
        let check = read_key_check(&mut *self.conn().await?, self.inner.backend).await?;
        check_key_matches(&self.cipher(), &check)?;
        let definitions = self.definitions().await?;
        let summary = self.inner.router.reload(&definitions);
        self.inner.applied.send_replace(seq);
        Ok(summary)
    }

    /// Notified with the catalog change counter each time the router has
    /// been reloaded (by this process's edits or by the watcher).
    pub fn subscribe_reloads(&self) -> watch::Receiver<i64> {
        self.inner.applied.subscribe()
    }

    /// The catalog's change counter (bumped by every write transaction).
    pub async fn change_seq(&self) -> Result<i64> {
        let row = sqlx::query("SELECT change_seq FROM csal_catalog_state WHERE id = 1")
            .fetch_one(&self.inner.pool)
            .await
            .map_err(self.err("read the catalog change counter"))?;
        row.try_get::<i64, _>("change_seq").map_err(self.err("read the catalog change counter"))
    }

    /// Stop watching, shut the instances down and close the pool.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(mut p) = self.inner.poller.lock()
            && let Some(handle) = p.take()
        {
            handle.abort();
        }
        for e in self.inner.router.shutdown_all().await {
            tracing::warn!(error = %e, "instance shutdown failed");
        }
        self.inner.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }
}

async fn poll_changes(catalog: Weak<Inner>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = catalog.upgrade() else { return };
        let catalog = Catalog { inner };
        if catalog.inner.closed.load(Ordering::SeqCst) {
            return;
        }
        match catalog.change_seq().await {
            Ok(seq) if seq != *catalog.inner.applied.borrow() => match catalog.reload_router().await {
                Ok(summary) => tracing::debug!(?summary, seq, "router reloaded after a change by another node"),
                Err(e) => tracing::warn!(error = %e, "router reload failed; keeping the current instances"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot poll the catalog for changes"),
        }
    }
}
