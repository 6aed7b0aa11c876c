//! `StorageRouter`: the configured instances, by id and by name.
//!
//! Built once from instance definitions shaped like the seed's
//! `storage_modules` rows, and reloaded in place when they change. Unlike
//! the seed it never swallows a bad row: an instance whose provider type is
//! unknown, whose config is malformed, or whose factory fails stays listed
//! as offline with the reason. Disabled rows are listed but not built.
//!
//! A reload builds the new set off to the side and swaps it in atomically.
//! Unchanged instances keep their module (and its connections); operations
//! in flight on a replaced one finish on the old handle they hold.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::error::{ErrorKind, Result, StorageError};
use crate::layers::{LayerConfig, LayeredModule};
use crate::module::{
    Capabilities, Checksum, HealthReport, ListPage, ListRequest, ObjectMeta, StorageModule, WriteMeta, WriteReceipt,
};
use crate::range::ByteRange;
use crate::registry::{ConfigSink, ConfigUpdates, InstanceContext, find_provider};
use crate::secret::{mask_config, secret_values};
use crate::stream::ByteStream;

/// One configured instance: the seed's `storage_modules` row.
///
/// `#[non_exhaustive]`: the row grows columns (`load_error` came later);
/// build it with [`InstanceDefinition::new`] and set fields after.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceDefinition {
    /// Catalog id (a ULID), stable across renames.
    pub id: String,
    /// Unique logical name used in policies (`gcs:corp-backups`).
    pub name: String,
    /// Free text for people.
    pub label: Option<String>,
    /// The provider to build it with (`s3`, `local_fs`, ...).
    pub provider_type: String,
    /// Disabled instances are listed but not built.
    pub is_enabled: bool,
    /// The provider's config as JSON text (secrets in clear: keep it private).
    pub config_json: String,
    /// When the row was created, if the source knows.
    pub created_at: Option<SystemTime>,
    /// When the row last changed, if the source knows.
    pub updated_at: Option<SystemTime>,
    /// Why the row could not be read (for example a secret that does not
    /// decrypt under this node's key): the instance is listed offline with
    /// this reason (secret-free) instead of being built, and `config_json`
    /// holds the config with its secrets masked.
    pub load_error: Option<(ErrorKind, String)>,
}

impl std::fmt::Debug for InstanceDefinition {
    /// Never prints `config_json`: it holds secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceDefinition")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("provider_type", &self.provider_type)
            .field("is_enabled", &self.is_enabled)
            .finish_non_exhaustive()
    }
}

impl InstanceDefinition {
    /// A minimal enabled definition (id = name), handy in tests and examples.
    pub fn new(name: &str, provider_type: &str, config: serde_json::Value) -> Self {
        InstanceDefinition {
            id: name.to_owned(),
            name: name.to_owned(),
            label: None,
            provider_type: provider_type.to_owned(),
            is_enabled: true,
            config_json: config.to_string(),
            created_at: None,
            updated_at: None,
            load_error: None,
        }
    }
}

/// Whether an instance can take operations.
///
/// `#[non_exhaustive]`: room for states such as draining or rebuilding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum InstanceStatus {
    /// Built and taking operations.
    Ready,
    /// Disabled by the admin: listed, not built.
    Disabled,
    /// Failed to load; `reason` says why (secret-free).
    Offline {
        /// The kind of the error that stopped it.
        kind: ErrorKind,
        /// That error's message.
        reason: String,
    },
}

/// What the router knows of one instance (safe to show: secrets masked).
///
/// `#[non_exhaustive]`: the router reports more over time; only csal-core
/// builds it.
#[derive(Debug, Clone, serde::Serialize)]
#[non_exhaustive]
pub struct InstanceInfo {
    /// See [`InstanceDefinition::id`].
    pub id: String,
    /// See [`InstanceDefinition::name`].
    pub name: String,
    /// See [`InstanceDefinition::label`].
    pub label: Option<String>,
    /// See [`InstanceDefinition::provider_type`].
    pub provider_type: String,
    /// See [`InstanceDefinition::is_enabled`].
    pub is_enabled: bool,
    /// Whether it takes operations.
    pub status: InstanceStatus,
    /// What the provider can do (loaded instances only).
    pub capabilities: Option<Capabilities>,
    /// The config with secret fields masked (unknown provider: omitted).
    pub masked_config: Option<serde_json::Value>,
    /// The last health check's report, if one ran.
    pub last_health: Option<HealthReport>,
}

/// One entry of the router: a definition and what became of it.
pub struct InstanceHandle {
    definition: InstanceDefinition,
    module: std::result::Result<Option<Arc<LayeredModule>>, (ErrorKind, String)>,
    masked_config: Option<serde_json::Value>,
}

impl InstanceHandle {
    fn build(def: &InstanceDefinition, layers: &LayerConfig, sink: Option<&Arc<dyn ConfigSink>>) -> Self {
        let masked_config = find_provider(&def.provider_type)
            .ok()
            .and_then(|reg| serde_json::from_str(&def.config_json).ok().map(|cfg| mask_config(reg.fields, &cfg)));
        let module = if def.is_enabled {
            Self::construct(def, layers, sink).map(Some).map_err(|e| {
                tracing::warn!(instance = %def.name, provider = %def.provider_type, error = %e, "instance failed to load");
                (e.kind(), e.to_string())
            })
        } else {
            Ok(None)
        };
        InstanceHandle { definition: def.clone(), module, masked_config }
    }

    fn construct(
        def: &InstanceDefinition,
        layers: &LayerConfig,
        sink: Option<&Arc<dyn ConfigSink>>,
    ) -> Result<Arc<LayeredModule>> {
        let context =
            |e: StorageError| e.with_context_if_missing(&def.provider_type, &def.name, crate::Operation::Construct);
        if let Some((kind, reason)) = &def.load_error {
            return Err(context(StorageError::new(*kind, reason.clone())));
        }
        let registration = find_provider(&def.provider_type).map_err(context)?;
        let config: serde_json::Value = serde_json::from_str(&def.config_json).map_err(|e| {
            context(StorageError::invalid_config(format!(
                "config_json is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )))
        })?;
        let secrets = secret_values(registration.fields, &config);
        let ctx = InstanceContext {
            config_updates: sink.map(|s| ConfigUpdates::new(def.id.clone(), s.clone())),
            ..InstanceContext::new(def.id.clone(), def.name.clone(), def.provider_type.clone())
        };
        let inner = registration.build(&ctx, &config).map_err(|e| context(e).redact(&secrets))?;
        Ok(Arc::new(LayeredModule::new(inner, &def.name, &def.provider_type, secrets, layers.clone())))
    }

    /// The row it was built from.
    pub fn definition(&self) -> &InstanceDefinition {
        &self.definition
    }

    /// The layered module, or why there is none.
    pub fn module(&self) -> Result<&Arc<LayeredModule>> {
        match &self.module {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(StorageError::new(ErrorKind::Unavailable, "instance is disabled")
                .with_instance(self.definition.name.clone())
                .with_provider(self.definition.provider_type.clone())),
            Err((kind, reason)) => {
                Err(StorageError::new(ErrorKind::Unavailable, format!("instance failed to load ({kind}): {reason}"))
                    .with_instance(self.definition.name.clone())
                    .with_provider(self.definition.provider_type.clone()))
            }
        }
    }

    /// Whether it takes operations, and why not.
    pub fn status(&self) -> InstanceStatus {
        match &self.module {
            Ok(Some(_)) => InstanceStatus::Ready,
            Ok(None) => InstanceStatus::Disabled,
            Err((kind, reason)) => InstanceStatus::Offline { kind: *kind, reason: reason.clone() },
        }
    }

    /// What the router knows of it, secrets masked.
    pub fn info(&self) -> InstanceInfo {
        let d = &self.definition;
        let module = self.module.as_ref().ok().and_then(Option::as_ref);
        InstanceInfo {
            id: d.id.clone(),
            name: d.name.clone(),
            label: d.label.clone(),
            provider_type: d.provider_type.clone(),
            is_enabled: d.is_enabled,
            status: self.status(),
            capabilities: module.map(|m| m.capabilities()),
            masked_config: self.masked_config.clone(),
            last_health: module.and_then(|m| m.last_health()),
        }
    }
}

#[derive(Default)]
struct RouterState {
    /// In definition order.
    instances: Vec<Arc<InstanceHandle>>,
    /// By id and by name.
    by_key: HashMap<String, Arc<InstanceHandle>>,
}

impl RouterState {
    fn new(instances: Vec<Arc<InstanceHandle>>) -> Self {
        let mut by_key = HashMap::new();
        for h in &instances {
            by_key.insert(h.definition.id.clone(), h.clone());
        }
        // Names win over ids if a name happens to equal another row's id.
        for h in &instances {
            by_key.insert(h.definition.name.clone(), h.clone());
        }
        RouterState { instances, by_key }
    }
}

/// What a reload changed.
///
/// `#[non_exhaustive]`: only csal-core builds it, and it may report more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadSummary {
    /// Instances new in this reload.
    pub added: Vec<String>,
    /// Instances rebuilt because their row changed.
    pub changed: Vec<String>,
    /// Instances gone from the source.
    pub removed: Vec<String>,
    /// Instances kept as they were (their modules untouched).
    pub unchanged: usize,
}

fn no_instance(key: &str) -> StorageError {
    StorageError::not_found(format!("no storage instance with id or name '{key}'"))
}

/// Routes contract operations to instances by id or name.
pub struct StorageRouter {
    layers: LayerConfig,
    /// Where modules persist config they change themselves (refreshed OAuth
    /// tokens); the catalog when the router is fed from one.
    config_sink: Option<Arc<dyn ConfigSink>>,
    state: RwLock<Arc<RouterState>>,
}

impl StorageRouter {
    /// Build every instance (none is dropped; failures are listed offline).
    pub fn new(definitions: &[InstanceDefinition], layers: LayerConfig) -> Self {
        Self::with_config_sink(definitions, layers, None)
    }

    /// Like [`StorageRouter::new`], with a store that modules write changed
    /// config back to (see [`ConfigSink`]).
    pub fn with_config_sink(
        definitions: &[InstanceDefinition],
        layers: LayerConfig,
        config_sink: Option<Arc<dyn ConfigSink>>,
    ) -> Self {
        let router = StorageRouter { layers, config_sink, state: RwLock::new(Arc::new(RouterState::default())) };
        router.reload(definitions);
        router
    }

    /// The upload limits of this router's instances (node-wide and per
    /// instance; see [`crate::layers::bandwidth`]).
    pub fn bandwidth(&self) -> &crate::layers::BandwidthLimits {
        &self.layers.bandwidth
    }

    /// A router with default layers.
    pub fn from_definitions(definitions: &[InstanceDefinition]) -> Self {
        Self::new(definitions, LayerConfig::default())
    }

    fn snapshot(&self) -> Arc<RouterState> {
        self.state.read().expect("router lock").clone()
    }

    /// Replace the instance set atomically. Unchanged definitions keep their
    /// module; changed ones are rebuilt; removed ones are dropped once the
    /// last operation holding them finishes.
    pub fn reload(&self, definitions: &[InstanceDefinition]) -> ReloadSummary {
        let old = self.snapshot();
        // By id, so a reload of n rows is O(n) (a catalog may hold thousands).
        let previous: HashMap<&str, &Arc<InstanceHandle>> =
            old.instances.iter().map(|h| (h.definition.id.as_str(), h)).collect();
        let mut summary = ReloadSummary::default();
        let mut instances = Vec::with_capacity(definitions.len());
        for def in definitions {
            match previous.get(def.id.as_str()) {
                Some(prev) if prev.definition == *def => {
                    summary.unchanged += 1;
                    instances.push(Arc::clone(prev));
                }
                Some(_) => {
                    summary.changed.push(def.name.clone());
                    instances.push(Arc::new(InstanceHandle::build(def, &self.layers, self.config_sink.as_ref())));
                }
                None => {
                    summary.added.push(def.name.clone());
                    instances.push(Arc::new(InstanceHandle::build(def, &self.layers, self.config_sink.as_ref())));
                }
            }
        }
        let kept: std::collections::HashSet<&str> = definitions.iter().map(|d| d.id.as_str()).collect();
        for h in &old.instances {
            if !kept.contains(h.definition.id.as_str()) {
                summary.removed.push(h.definition.name.clone());
            }
        }
        *self.state.write().expect("router lock") = Arc::new(RouterState::new(instances));
        if !summary.added.is_empty() || !summary.changed.is_empty() || !summary.removed.is_empty() {
            tracing::info!(?summary, "storage router reloaded");
        }
        summary
    }

    /// The handle for an id or name.
    pub fn handle(&self, key: &str) -> Result<Arc<InstanceHandle>> {
        self.snapshot().by_key.get(key).cloned().ok_or_else(|| no_instance(key))
    }

    /// The ready module for an id or name (an `Unavailable` error otherwise).
    /// The dispatch path of every operation: one read lock, one `Arc` clone.
    pub fn module(&self, key: &str) -> Result<Arc<LayeredModule>> {
        let state = self.state.read().expect("router lock");
        match state.by_key.get(key) {
            Some(handle) => handle.module().cloned(),
            None => Err(no_instance(key)),
        }
    }

    /// Every instance in definition order, with status (secrets masked).
    pub fn instances(&self) -> Vec<InstanceInfo> {
        self.snapshot().instances.iter().map(|h| h.info()).collect()
    }

    /// [`StorageModule::validate`] on the instance named (or with the id) `key`, through its layers.
    pub async fn validate(&self, key: &str) -> Result<()> {
        self.module(key)?.validate().await
    }
    /// [`StorageModule::write`] on the instance named (or with the id) `key`, through its layers.
    pub async fn write(&self, key: &str, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        self.module(key)?.write(body, meta).await
    }
    /// [`StorageModule::read`] on the instance named (or with the id) `key`, through its layers.
    pub async fn read(&self, key: &str, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        self.module(key)?.read(object_id, range).await
    }
    /// A full read checked against `expected` (see [`LayeredModule::read_verified`]).
    pub async fn read_verified(&self, key: &str, object_id: &str, expected: &Checksum) -> Result<ByteStream> {
        self.module(key)?.read_verified(object_id, expected).await
    }
    /// Copy an object to a new object (a fresh id; nothing is overwritten):
    /// on the same instance its own `copy` (server-side where the provider
    /// can), across instances a full read of the source, verified against
    /// `expected` when given and the checksum the source kept, streamed
    /// into a write on the destination (bounded memory). The receipt names
    /// the destination instance and carries the CRC32C of the bytes written.
    pub async fn copy(
        &self,
        from: &str,
        object_id: &str,
        to: &str,
        meta: WriteMeta,
        expected: Option<&Checksum>,
    ) -> Result<WriteReceipt> {
        let (source, destination) = (self.handle(from)?, self.handle(to)?);
        if source.definition.id == destination.definition.id && expected.is_none() {
            return source.module()?.copy(object_id, meta).await;
        }
        let body = match expected {
            Some(want) => source.module()?.read_verified(object_id, want).await?,
            None => source.module()?.read(object_id, None).await?,
        };
        destination.module()?.write(body, meta).await
    }
    /// [`StorageModule::delete`] on the instance named (or with the id) `key`, through its layers.
    pub async fn delete(&self, key: &str, object_id: &str) -> Result<()> {
        self.module(key)?.delete(object_id).await
    }
    /// [`StorageModule::list`] on the instance named (or with the id) `key`, through its layers.
    pub async fn list(&self, key: &str, request: &ListRequest) -> Result<ListPage> {
        self.module(key)?.list(request).await
    }
    /// [`StorageModule::stat`] on the instance named (or with the id) `key`, through its layers.
    pub async fn stat(&self, key: &str, object_id: &str) -> Result<ObjectMeta> {
        self.module(key)?.stat(object_id).await
    }
    /// [`StorageModule::presign_read`] on the instance named (or with the id) `key`, through its layers.
    pub async fn presign_read(&self, key: &str, object_id: &str, expires_in: Duration) -> Result<String> {
        self.module(key)?.presign_read(object_id, expires_in).await
    }

    /// Health of one instance. Disabled or failed instances report offline
    /// with the reason rather than erroring (the Test button shows it).
    pub async fn health_check(&self, key: &str) -> Result<HealthReport> {
        let handle = self.handle(key)?;
        Ok(match handle.module() {
            Ok(m) => m.health_check().await,
            Err(e) => HealthReport::offline(&e),
        })
    }

    /// Validate + health check: the admin "Test" button.
    pub async fn test(&self, key: &str) -> Result<HealthReport> {
        let module = self.module(key)?;
        module.validate().await?;
        Ok(module.health_check().await)
    }

    /// Shut down every ready instance; returns the errors of those that failed.
    pub async fn shutdown_all(&self) -> Vec<StorageError> {
        let state = self.snapshot();
        let mut errors = Vec::new();
        for h in &state.instances {
            if let Ok(Some(m)) = &h.module
                && let Err(e) = m.shutdown().await
            {
                errors.push(e);
            }
        }
        errors
    }
}
