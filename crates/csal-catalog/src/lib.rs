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

mod bandwidth;
mod crypto;
mod health;
pub mod import;
mod migrate;
mod policy;
mod records;
mod retention;
mod segments;
mod sessions;
mod tokens;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use csal_core::{
    ErrorKind, InstanceDefinition, LayerConfig, ReloadSummary, Result, StorageError, StorageRouter, find_provider,
    secret::MASK,
};
use csal_sql::{Backend, DbLocation, map_sqlx};
use sqlx::{AnyConnection, AnyPool, Row};
use tokio::sync::watch;

pub use bandwidth::NODE_LIMIT;
pub use crypto::{MASTER_KEY_ENV, MasterKey};
pub use migrate::SCHEMA_VERSION;
pub use policy::{AppliedPolicy, CameraPolicy, DEFAULT_POLICY};
pub use records::{CameraWrite, ModuleRecord, ModuleUpdate, NewModule, check_module_name};
pub use retention::{LegalHold, NewHold};
pub use segments::{
    CameraSummary, CopyState, MAX_SEGMENT_PAGE, NewSegment, NodeSpool, SegmentCopy, SegmentQuery, SegmentRecord,
    TargetUsage, TimeSource, time_to_ms,
};
pub use sessions::{SessionLimits, SessionRecord};
pub use tokens::{ApiTokenInfo, LEGACY_TOKENS_SETTING, TokenScope, random_token};

use crypto::Cipher;
use records::{check_key, check_label, ms_to_time, now_ms};

/// Knobs for [`Catalog::open_with`].
#[derive(Debug, Clone)]
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
        if let Ok(mut p) = self.poller.lock() {
            if let Some(handle) = p.take() {
                handle.abort();
            }
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

/// A `storage_modules` row as stored (secret fields sealed).
struct StoredRow {
    id: String,
    name: String,
    label: Option<String>,
    provider_type: String,
    is_enabled: bool,
    config: serde_json::Value,
    created_at: i64,
    updated_at: i64,
}

fn module_aad(id: &str, field: &str) -> String {
    format!("csal:module:{id}:{field}")
}

fn setting_aad(key: &str) -> String {
    format!("csal:setting:{key}")
}

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

    // ---------------------------------------------------------------- modules

    /// Every instance, by name; secrets masked.
    pub async fn list_modules(&self) -> Result<Vec<ModuleRecord>> {
        let mut conn = self.conn().await?;
        let rows = fetch_rows(&mut conn, self.inner.backend).await?;
        Ok(rows.iter().map(masked_record).collect())
    }

    /// One instance by name or id; secrets masked.
    pub async fn get_module(&self, name_or_id: &str) -> Result<ModuleRecord> {
        let mut conn = self.conn().await?;
        let row = find_row(&mut conn, self.inner.backend, name_or_id).await?;
        Ok(masked_record(&row))
    }

    /// Add an instance after checking its name and config.
    pub async fn create_module(&self, new: NewModule) -> Result<ModuleRecord> {
        check_module_name(&new.name)?;
        check_label(new.label.as_deref())?;
        let registration = find_provider(&new.provider_type)?;
        let id = ulid::Ulid::new().to_string();
        check_by_building(registration, &id, &new.name, &new.config)?;
        let now = now_ms();
        let err = self.err("create storage module");
        let mut tx = self.begin_write().await?;
        let cipher = self.cipher_for_write(&mut tx).await?;
        let sealed = seal_config(&cipher, &id, registration.fields, &new.config)?;
        let config_json = serde_json::to_string(&sealed)
            .map_err(|_| StorageError::invalid_config("config cannot be serialised as JSON"))?;
        let exists = sqlx::query("SELECT id FROM storage_modules WHERE name = $1")
            .bind(&new.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(&err)?;
        if exists.is_some() {
            return Err(duplicate(&new.name));
        }
        sqlx::query(
            "INSERT INTO storage_modules (id, name, label, provider_type, is_enabled, config_json, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(new.label.clone().filter(|l| !l.trim().is_empty()))
        .bind(&new.provider_type)
        .bind(i64::from(new.is_enabled))
        .bind(&config_json)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match map_sqlx(e, self.inner.backend, "create storage module") {
            e if e.kind() == ErrorKind::AlreadyExists => duplicate(&new.name),
            e => e,
        })?;
        self.commit(tx, "create storage module").await?;
        tracing::info!(instance = %new.name, provider = %new.provider_type, "storage module created");
        self.after_change().await;
        self.get_module(&id).await
    }

    /// Change label, config and/or enabled flag (see [`ModuleUpdate`] for
    /// how secret fields are kept).
    pub async fn update_module(&self, name_or_id: &str, update: ModuleUpdate) -> Result<ModuleRecord> {
        if let Some(label) = &update.label {
            check_label(label.as_deref())?;
        }
        let backend = self.inner.backend;
        let err = self.err("update storage module");
        let mut tx = self.begin_write().await?;
        let row = find_row(&mut tx, backend, name_or_id).await?;
        let config_json = match &update.config {
            None => None,
            Some(new_config) => {
                let registration = find_provider(&row.provider_type)?;
                refuse_secrets_to_a_new_target(&row, registration.fields, new_config)?;
                let cipher = self.cipher_for_write(&mut tx).await?;
                let merged = merge_secrets(&cipher, &row, registration.fields, new_config)?;
                check_by_building(registration, &row.id, &row.name, &merged)?;
                let sealed = seal_config(&cipher, &row.id, registration.fields, &merged)?;
                Some(
                    serde_json::to_string(&sealed)
                        .map_err(|_| StorageError::invalid_config("config cannot be serialised as JSON"))?,
                )
            }
        };
        let label = update.label.clone().unwrap_or(row.label.clone()).filter(|l| !l.trim().is_empty());
        let enabled = update.is_enabled.unwrap_or(row.is_enabled);
        let config_json = match config_json {
            Some(c) => c,
            None => serde_json::to_string(&row.config).unwrap_or_else(|_| "{}".to_owned()),
        };
        let updated_at = now_ms().max(row.updated_at + 1);
        sqlx::query(
            "UPDATE storage_modules SET label = $1, is_enabled = $2, config_json = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(label)
        .bind(i64::from(enabled))
        .bind(config_json)
        .bind(updated_at)
        .bind(&row.id)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        self.commit(tx, "update storage module").await?;
        tracing::info!(instance = %row.name, "storage module updated");
        self.after_change().await;
        self.get_module(&row.id).await
    }

    /// Merge values a module changed itself (a refreshed OAuth token) into
    /// an instance's stored config, sealing secret fields. Every key must be
    /// a field of the provider's config spec. This is the catalog's
    /// [`csal_core::ConfigSink`], which the router hands to each instance.
    pub async fn save_config_changes(
        &self,
        name_or_id: &str,
        changes: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let backend = self.inner.backend;
        let mut tx = self.begin_write().await?;
        let row = find_row(&mut tx, backend, name_or_id).await?;
        let registration = find_provider(&row.provider_type)?;
        if let Some(key) = changes.keys().find(|k| !registration.fields.iter().any(|f| f.key == k.as_str())) {
            return Err(StorageError::invalid_input(format!(
                "'{key}' is not a config field of provider '{}'",
                row.provider_type
            )));
        }
        let cipher = self.cipher_for_write(&mut tx).await?;
        let mut plain = open_config(&cipher, &row)?;
        let Some(map) = plain.as_object_mut() else {
            return Err(StorageError::invalid_config(format!("stored config of '{}' is not an object", row.name)));
        };
        map.extend(changes);
        let sealed = seal_config(&cipher, &row.id, registration.fields, &plain)?;
        let config_json = serde_json::to_string(&sealed)
            .map_err(|_| StorageError::invalid_config("config cannot be serialised as JSON"))?;
        sqlx::query("UPDATE storage_modules SET config_json = $1, updated_at = $2 WHERE id = $3")
            .bind(config_json)
            .bind(now_ms().max(row.updated_at + 1))
            .bind(&row.id)
            .execute(&mut *tx)
            .await
            .map_err(self.err("save storage module config changes"))?;
        self.commit(tx, "save storage module config changes").await?;
        tracing::info!(instance = %row.name, "storage module saved config changes it made itself");
        self.after_change().await;
        Ok(())
    }

    /// Enable or disable an instance.
    pub async fn set_enabled(&self, name_or_id: &str, enabled: bool) -> Result<ModuleRecord> {
        self.update_module(name_or_id, ModuleUpdate { is_enabled: Some(enabled), ..Default::default() }).await
    }

    /// Delete an instance. Refused while a camera policy names it.
    pub async fn delete_module(&self, name_or_id: &str) -> Result<()> {
        let backend = self.inner.backend;
        let err = self.err("delete storage module");
        let mut tx = self.begin_write().await?;
        let row = find_row(&mut tx, backend, name_or_id).await?;
        let users = policy::cameras_using(&mut tx, backend, &row.name).await?;
        if !users.is_empty() {
            return Err(StorageError::invalid_input(format!(
                "storage module '{}' is a target of the storage policy of camera(s) {}; change those policies first",
                row.name,
                users.join(", ")
            )));
        }
        sqlx::query("DELETE FROM storage_modules WHERE id = $1").bind(&row.id).execute(&mut *tx).await.map_err(&err)?;
        self.commit(tx, "delete storage module").await?;
        tracing::info!(instance = %row.name, "storage module deleted");
        self.after_change().await;
        Ok(())
    }

    /// Every instance with its config decrypted, for a router.
    /// Keep these private: they hold secrets in clear.
    pub async fn definitions(&self) -> Result<Vec<InstanceDefinition>> {
        let mut conn = self.conn().await?;
        let rows = fetch_rows(&mut conn, self.inner.backend).await?;
        drop(conn);
        let cipher = self.cipher();
        let definitions = rows
            .into_iter()
            .map(|row| {
                // One row that cannot be opened is that instance offline,
                // never the whole catalog.
                let (config_json, load_error) = match open_config(&cipher, &row) {
                    Ok(plain) => (plain.to_string(), None),
                    Err(e) => {
                        tracing::warn!(instance = %row.name, error = %e, "storage module cannot be loaded");
                        (masked_record(&row).config.to_string(), Some((e.kind(), e.message().to_owned())))
                    }
                };
                InstanceDefinition {
                    id: row.id,
                    name: row.name,
                    label: row.label,
                    provider_type: row.provider_type,
                    is_enabled: row.is_enabled,
                    config_json,
                    created_at: Some(ms_to_time(row.created_at)),
                    updated_at: Some(ms_to_time(row.updated_at)),
                    load_error,
                }
            })
            .collect();
        Ok(definitions)
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

    // --------------------------------------------------------------- policies

    /// Set a camera's ordered storage targets (instance names) and how many
    /// of them must hold each segment (a `Vec<String>` means one copy).
    /// Every name must exist now and `copies` be 1 ..= targets
    /// (`InvalidInput` otherwise).
    pub async fn set_policy(&self, camera_id: &str, policy: impl Into<CameraPolicy>) -> Result<()> {
        policy::set_policy(self, camera_id, policy.into()).await
    }

    /// The storage policy that applies to a camera: its own, else the
    /// default ([`DEFAULT_POLICY`]); `NotFound` when neither is set.
    pub async fn get_policy(&self, camera_id: &str) -> Result<CameraPolicy> {
        policy::get_policy(self, camera_id).await
    }

    /// Every camera policy, by camera id.
    pub async fn list_policies(&self) -> Result<Vec<(String, CameraPolicy)>> {
        policy::list_policies(self).await
    }

    /// The policy that applies to a camera and whose it is (the camera's
    /// own id, or [`DEFAULT_POLICY`]).
    pub async fn policy_in_effect(&self, camera_id: &str) -> Result<(String, CameraPolicy)> {
        policy::policy_in_effect(self, camera_id).await
    }

    /// Every camera with its own policy or with recordings, and the policy
    /// that applies to it (the default for recorded cameras without one).
    pub async fn policies_in_effect(&self) -> Result<Vec<AppliedPolicy>> {
        policy::policies_in_effect(self).await
    }

    /// Remove a camera's policy (removing a missing one succeeds).
    pub async fn delete_policy(&self, camera_id: &str) -> Result<()> {
        policy::delete_policy(self, camera_id).await
    }

    /// Write a recording to the camera's first usable target, failing over
    /// to the next:
    ///
    /// 1. targets that are missing, disabled or failed to load are skipped
    ///    before any byte of `body` is read;
    /// 2. targets whose last health check said `offline` are tried last;
    /// 3. a failed write moves on to the next target unless the error is
    ///    about the request itself (`InvalidInput`, `Integrity`);
    /// 4. a failed attempt has consumed the body, so fail-over needs a
    ///    replayable body (`body.try_clone()` is `Some`: bytes, files); with
    ///    a one-shot stream the error says the body cannot be replayed.
    ///
    /// `NotFound` if the camera has no policy; `Unavailable` listing every
    /// target's reason if none took the write.
    pub async fn write_for_camera(
        &self,
        camera_id: &str,
        body: csal_core::ByteStream,
        meta: csal_core::WriteMeta,
    ) -> Result<CameraWrite> {
        policy::write_for_camera(self, camera_id, body, meta).await
    }

    // --------------------------------------------------------------- settings

    /// A setting's value (decrypted if it was stored as secret).
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        check_key("setting key", key)?;
        let row = sqlx::query("SELECT value, is_secret FROM csal_settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(self.err("read setting"))?;
        let Some(row) = row else { return Ok(None) };
        let err = self.err("read setting");
        let value: String = row.try_get("value").map_err(&err)?;
        let secret: i64 = row.try_get("is_secret").map_err(&err)?;
        if secret != 0 {
            return self.cipher().open(&value, &setting_aad(key), &format!("setting '{key}'")).map(Some);
        }
        Ok(Some(value))
    }

    /// Store a setting; `secret` ones are encrypted with the master key.
    /// A secret one is sealed inside a write transaction with the catalog's
    /// current key (see `cipher_for_write`).
    pub async fn set_setting(&self, key: &str, value: &str, secret: bool) -> Result<()> {
        self.put_setting(key, value, secret, false).await.map(|_| ())
    }

    /// Store a setting only if it is absent (or empty); `true` when this
    /// call stored it. Two nodes racing to set the same first value agree
    /// on one winner.
    pub async fn set_setting_if_absent(&self, key: &str, value: &str, secret: bool) -> Result<bool> {
        self.put_setting(key, value, secret, true).await
    }

    async fn put_setting(&self, key: &str, value: &str, secret: bool, only_if_absent: bool) -> Result<bool> {
        check_key("setting key", key)?;
        let sql = format!(
            "INSERT INTO csal_settings (key, value, is_secret, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, is_secret = excluded.is_secret, \
             updated_at = excluded.updated_at{}",
            if only_if_absent { " WHERE csal_settings.value = ''" } else { "" }
        );
        let err = self.err("write setting");
        let mut tx = if secret { self.begin_write().await? } else { self.inner.pool.begin().await.map_err(&err)? };
        let stored = match secret {
            true => self.cipher_for_write(&mut tx).await?.seal(value, &setting_aad(key))?,
            false => value.to_owned(),
        };
        let done = sqlx::query(&sql)
            .bind(key)
            .bind(stored)
            .bind(i64::from(secret))
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        self.commit(tx, "write setting").await?;
        Ok(done.rows_affected() > 0)
    }

    /// Remove a setting (removing a missing one succeeds).
    pub async fn delete_setting(&self, key: &str) -> Result<()> {
        check_key("setting key", key)?;
        sqlx::query("DELETE FROM csal_settings WHERE key = $1")
            .bind(key)
            .execute(&self.inner.pool)
            .await
            .map_err(self.err("delete setting"))?;
        Ok(())
    }

    // ------------------------------------------------------------- master key

    /// Re-encrypt every secret (module configs, secret settings, the key
    /// check) under `new_key`, in one transaction, and use it from now on.
    /// Afterwards give every other node the new key (env or key file) and
    /// restart it; until then their reloads fail with a key-mismatch error
    /// and they keep the instances they had.
    pub async fn rotate_master_key(&self, new_key: MasterKey) -> Result<()> {
        let new_cipher = Arc::new(new_key.load()?);
        let result = self.rotate_to(new_cipher.clone()).await;
        if result.is_ok() {
            match self.inner.cipher.write() {
                Ok(mut c) => *c = new_cipher,
                Err(p) => *p.into_inner() = new_cipher,
            }
        }
        self.set_rotating_to(None);
        result?;
        tracing::info!("catalog master key rotated");
        self.after_change().await;
        Ok(())
    }

    /// The rotation transaction of [`Catalog::rotate_master_key`].
    async fn rotate_to(&self, new_cipher: Arc<Cipher>) -> Result<()> {
        let backend = self.inner.backend;
        let err = self.err("rotate the master key");
        let mut tx = self.begin_write().await?;
        let old = self.cipher_for_write(&mut tx).await?;
        for row in fetch_rows(&mut tx, backend).await? {
            let plain = open_config(&old, &row)?;
            let fields = find_provider(&row.provider_type).map(|r| r.fields).unwrap_or(&[]);
            let resealed = reseal_config(&new_cipher, &row, fields, &plain)?;
            sqlx::query("UPDATE storage_modules SET config_json = $1 WHERE id = $2")
                .bind(resealed.to_string())
                .bind(&row.id)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        let settings = sqlx::query("SELECT key, value FROM csal_settings WHERE is_secret <> 0")
            .fetch_all(&mut *tx)
            .await
            .map_err(&err)?;
        for s in settings {
            let key: String = s.try_get("key").map_err(&err)?;
            let value: String = s.try_get("value").map_err(&err)?;
            let plain = old.open(&value, &setting_aad(&key), &format!("setting '{key}'"))?;
            sqlx::query("UPDATE csal_settings SET value = $1 WHERE key = $2")
                .bind(new_cipher.seal(&plain, &setting_aad(&key))?)
                .bind(&key)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        sqlx::query("UPDATE csal_catalog_state SET key_check = $1 WHERE id = 1")
            .bind(new_cipher.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)?)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        // From here on this process's writes may see the new key check.
        self.set_rotating_to(Some(new_cipher));
        tx.commit().await.map_err(&err)
    }

    /// Stop watching, shut the instances down and close the pool.
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(mut p) = self.inner.poller.lock() {
            if let Some(handle) = p.take() {
                handle.abort();
            }
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

async fn check_or_set_key(pool: &AnyPool, backend: Backend, cipher: &Cipher) -> Result<()> {
    let err = |e| map_sqlx(e, backend, "check the master key");
    // Only sets it if nobody has: two first nodes racing agree on one key.
    sqlx::query("UPDATE csal_catalog_state SET key_check = $1 WHERE id = 1 AND key_check IS NULL")
        .bind(cipher.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)?)
        .execute(pool)
        .await
        .map_err(err)?;
    let check = read_key_check(&mut *pool.acquire().await.map_err(err)?, backend).await?;
    check_key_matches(cipher, &check)
}

/// The catalog's key check (a known text sealed with its current key).
async fn read_key_check(conn: &mut AnyConnection, backend: Backend) -> Result<String> {
    let err = |e| map_sqlx(e, backend, "read the catalog key check");
    let row = sqlx::query("SELECT key_check FROM csal_catalog_state WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .map_err(err)?;
    let check: Option<String> = row.try_get("key_check").map_err(err)?;
    check.ok_or_else(|| StorageError::permanent("catalog key check is missing"))
}

fn key_matches(cipher: &Cipher, check: &str) -> bool {
    cipher.open(check, KEY_CHECK_AAD, "the catalog").is_ok_and(|text| text == KEY_CHECK_PLAINTEXT)
}

fn check_key_matches(cipher: &Cipher, check: &str) -> Result<()> {
    if key_matches(cipher, check) {
        return Ok(());
    }
    Err(StorageError::auth(format!(
        "the master key does not match the one this catalog was created with (this node has key {}{}); set \
         {MASTER_KEY_ENV} or the key file to the catalog's current key (or restore it from backup)",
        cipher.key_id(),
        Cipher::key_id_of(check).map(|id| format!(", the catalog {id}")).unwrap_or_default()
    )))
}

/// The spec check, then the provider's own checks: its factory parses the
/// typed config (no network work; the module is dropped at once). Only
/// config errors refuse the change; a factory failing for another reason
/// (say a file it needs is missing on this node) is saved and the instance
/// shows as offline with the reason.
fn check_by_building(
    registration: &csal_core::ProviderRegistration,
    id: &str,
    name: &str,
    config: &serde_json::Value,
) -> Result<()> {
    registration.check_config(config)?;
    let ctx = csal_core::InstanceContext::new(id, name, registration.provider_type);
    let secrets = csal_core::secret::secret_values(registration.fields, config);
    match registration.build(&ctx, config) {
        Ok(_module) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::InvalidConfig | ErrorKind::InvalidInput) => Err(e.redact(&secrets)),
        Err(_) => Ok(()),
    }
}

fn duplicate(name: &str) -> StorageError {
    StorageError::already_exists(format!("a storage module named '{name}' already exists; pick another name"))
}

fn parse_row(row: &sqlx::any::AnyRow, backend: Backend) -> Result<StoredRow> {
    let err = |e| map_sqlx(e, backend, "read storage module row");
    let config_text: String = row.try_get("config_json").map_err(err)?;
    let id: String = row.try_get("id").map_err(err)?;
    let config = serde_json::from_str(&config_text)
        .map_err(|_| StorageError::invalid_config(format!("stored config_json of module '{id}' is not valid JSON")))?;
    Ok(StoredRow {
        name: row.try_get("name").map_err(err)?,
        label: row.try_get("label").map_err(err)?,
        provider_type: row.try_get("provider_type").map_err(err)?,
        is_enabled: row.try_get::<i64, _>("is_enabled").map_err(err)? != 0,
        config,
        created_at: row.try_get("created_at").map_err(err)?,
        updated_at: row.try_get("updated_at").map_err(err)?,
        id,
    })
}

async fn fetch_rows(conn: &mut AnyConnection, backend: Backend) -> Result<Vec<StoredRow>> {
    let rows = sqlx::query(&format!("SELECT {MODULE_COLS} FROM storage_modules ORDER BY name"))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| map_sqlx(e, backend, "list storage modules"))?;
    rows.iter().map(|r| parse_row(r, backend)).collect()
}

async fn find_row(conn: &mut AnyConnection, backend: Backend, name_or_id: &str) -> Result<StoredRow> {
    for column in ["name", "id"] {
        let row = sqlx::query(&format!("SELECT {MODULE_COLS} FROM storage_modules WHERE {column} = $1"))
            .bind(name_or_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| map_sqlx(e, backend, "find storage module"))?;
        if let Some(row) = row {
            return parse_row(&row, backend);
        }
    }
    Err(StorageError::not_found(format!("no storage module with name or id '{name_or_id}'")))
}

fn is_sealed(v: &serde_json::Value) -> Option<&str> {
    v.as_object().filter(|o| o.len() == 1).and_then(|o| o.get(ENC)).and_then(|s| s.as_str())
}

/// Stored config → shown config: sealed values and spec secrets masked.
fn masked_record(row: &StoredRow) -> ModuleRecord {
    let mut config = row.config.clone();
    if let Some(map) = config.as_object_mut() {
        for v in map.values_mut() {
            if is_sealed(v).is_some() {
                *v = serde_json::Value::String(MASK.to_owned());
            }
        }
    }
    if let Ok(reg) = find_provider(&row.provider_type) {
        config = csal_core::mask_config(reg.fields, &csal_core::spec::current_keys(reg.fields, &config));
    }
    ModuleRecord {
        id: row.id.clone(),
        name: row.name.clone(),
        label: row.label.clone(),
        provider_type: row.provider_type.clone(),
        is_enabled: row.is_enabled,
        config,
        created_at: ms_to_time(row.created_at),
        updated_at: ms_to_time(row.updated_at),
    }
}

/// Plain config → stored config: every non-empty secret field sealed.
fn seal_config(
    cipher: &Cipher,
    id: &str,
    fields: &[csal_core::ConfigField],
    plain: &serde_json::Value,
) -> Result<serde_json::Value> {
    let mut sealed = plain.clone();
    if let Some(map) = sealed.as_object_mut() {
        for field in fields.iter().filter(|f| f.kind.is_secret()) {
            if let Some(v) = map.get_mut(field.key) {
                if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
                    let enc = cipher.seal(s, &module_aad(id, field.key))?;
                    *v = serde_json::json!({ ENC: enc });
                }
            }
        }
    }
    Ok(sealed)
}

/// Stored config → plain config (every sealed value opened).
fn open_config(cipher: &Cipher, row: &StoredRow) -> Result<serde_json::Value> {
    let mut plain = row.config.clone();
    if let Some(map) = plain.as_object_mut() {
        for (key, v) in map.iter_mut() {
            if let Some(enc) = is_sealed(v) {
                let what = format!("field '{key}' of storage module '{}'", row.name);
                *v = serde_json::Value::String(cipher.open(enc, &module_aad(&row.id, key), &what)?);
            }
        }
    }
    Ok(plain)
}

/// Re-seal for key rotation: fields sealed before stay sealed (even if the
/// spec no longer calls them secret), spec secrets get sealed.
fn reseal_config(
    cipher: &Cipher,
    row: &StoredRow,
    fields: &[csal_core::ConfigField],
    plain: &serde_json::Value,
) -> Result<serde_json::Value> {
    let mut out = seal_config(cipher, &row.id, fields, plain)?;
    if let (Some(map), Some(stored)) = (out.as_object_mut(), row.config.as_object()) {
        for (key, v) in map.iter_mut() {
            if stored.get(key).and_then(is_sealed).is_some() && is_sealed(v).is_none() {
                if let Some(s) = v.as_str() {
                    *v = serde_json::json!({ ENC: cipher.seal(s, &module_aad(&row.id, key))? });
                }
            }
        }
    }
    Ok(out)
}

/// A secret left empty in an update is kept from the stored row; that must
/// not let an admin send it somewhere new. When a field that says where
/// credentials go (`credential_target` in the spec: a URL, host, token
/// endpoint, trust switch) changes, every stored secret the update would
/// keep has to be entered again (or removed), so an API token alone cannot
/// redirect a stored password to a host of its choice.
fn refuse_secrets_to_a_new_target(
    row: &StoredRow,
    fields: &[csal_core::ConfigField],
    new_config: &serde_json::Value,
) -> Result<()> {
    let (Some(new), Some(old)) = (new_config.as_object(), row.config.as_object()) else { return Ok(()) };
    let value = |map: &serde_json::Map<String, serde_json::Value>, f: &csal_core::ConfigField| {
        f.value_in(map).filter(|v| !csal_core::spec::is_blank(v)).cloned()
    };
    let moved: Vec<&str> =
        fields.iter().filter(|f| f.credential_target && value(new, f) != value(old, f)).map(|f| f.key).collect();
    if moved.is_empty() {
        return Ok(());
    }
    let kept: Vec<&str> = fields
        .iter()
        .filter(|f| f.kind.is_secret() && value(old, f).is_some())
        .filter(|f| match new.get(f.key) {
            None => true,
            Some(v) => v.as_str().is_some_and(|s| s.is_empty() || s == MASK),
        })
        .map(|f| f.key)
        .collect();
    if kept.is_empty() {
        return Ok(());
    }
    let list = |keys: &[&str]| keys.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    Err(StorageError::invalid_config(format!(
        "storage module '{}': changing {} changes where its credentials go; enter {} again (or clear {})",
        row.name,
        list(&moved),
        list(&kept),
        if kept.len() == 1 { "it" } else { "them" }
    )))
}

/// The config of an update with kept secrets filled in from the stored row.
fn merge_secrets(
    cipher: &Cipher,
    row: &StoredRow,
    fields: &[csal_core::ConfigField],
    new_config: &serde_json::Value,
) -> Result<serde_json::Value> {
    let mut merged = new_config.clone();
    let Some(map) = merged.as_object_mut() else { return Ok(merged) };
    for field in fields.iter().filter(|f| f.kind.is_secret()) {
        match map.get(field.key) {
            Some(serde_json::Value::Null) => {
                map.remove(field.key);
            }
            None => {
                if let Some(old) = row.config.get(field.key) {
                    map.insert(field.key.to_owned(), old_plain(cipher, row, field.key, old)?);
                }
            }
            Some(v) if v.as_str().is_some_and(|s| s.is_empty() || s == MASK) => match row.config.get(field.key) {
                Some(old) => {
                    let old = old_plain(cipher, row, field.key, old)?;
                    map.insert(field.key.to_owned(), old);
                }
                None => {
                    map.remove(field.key);
                }
            },
            Some(_) => {}
        }
    }
    Ok(merged)
}

fn old_plain(cipher: &Cipher, row: &StoredRow, key: &str, old: &serde_json::Value) -> Result<serde_json::Value> {
    match is_sealed(old) {
        Some(enc) => {
            let what = format!("field '{key}' of storage module '{}'", row.name);
            Ok(serde_json::Value::String(cipher.open(enc, &module_aad(&row.id, key), &what)?))
        }
        None => Ok(old.clone()),
    }
}
