//! The provider registry: each provider crate submits one
//! [`ProviderRegistration`] per provider_type with [`register_provider!`].
//!
//! Registrations are collected with `inventory` at link time, which means a
//! provider crate that nothing in the final binary refers to is not linked
//! and its registration is missing. Applications name the crates they use
//! with [`link_providers!`](crate::link_providers) (see the README).
//!
//! Two crates registering the same provider_type is reported (by
//! [`find_provider`] and [`registry_conflicts`]), never "one wins".

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Result, StorageError};
use crate::module::StorageModule;
use crate::spec::{ConfigField, ConfigSpec, ProviderCategory, check_config};

/// Who is asking a factory for a module (for logs and error context), and
/// where the module may write back config values it changes itself.
#[derive(Debug, Clone)]
pub struct InstanceContext {
    /// The instance's catalog id.
    pub id: String,
    /// The instance's unique name.
    pub name: String,
    /// The provider it is built with.
    pub provider_type: String,
    /// Set when the instance's config lives in a store (the catalog) that
    /// can take updates; `None` for configs built in code or from files.
    pub config_updates: Option<ConfigUpdates>,
}

impl InstanceContext {
    /// A context without a config store (tests, one-off commands).
    pub fn new(id: impl Into<String>, name: impl Into<String>, provider_type: impl Into<String>) -> Self {
        InstanceContext { id: id.into(), name: name.into(), provider_type: provider_type.into(), config_updates: None }
    }
}

/// Persists config values that a module changed itself, such as an OAuth
/// access token refreshed mid-upload or a rotated refresh token, so that a
/// restart does not lose them. Implemented by the catalog (which encrypts
/// secret fields); the router hands each instance a [`ConfigUpdates`].
#[async_trait::async_trait]
pub trait ConfigSink: Send + Sync + 'static {
    /// Merge `changes` (top-level config keys and their new values) into the
    /// stored config of instance `instance_id`, keeping every other key.
    async fn save_config_changes(
        &self,
        instance_id: &str,
        changes: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()>;
}

/// A [`ConfigSink`] bound to one instance.
#[derive(Clone)]
pub struct ConfigUpdates {
    instance_id: String,
    sink: Arc<dyn ConfigSink>,
}

impl ConfigUpdates {
    /// Updates of instance `instance_id`, written through `sink`.
    pub fn new(instance_id: impl Into<String>, sink: Arc<dyn ConfigSink>) -> Self {
        ConfigUpdates { instance_id: instance_id.into(), sink }
    }
    /// Persist `changes`; keys must be fields of the provider's config spec.
    pub async fn save(&self, changes: serde_json::Map<String, serde_json::Value>) -> Result<()> {
        self.sink.save_config_changes(&self.instance_id, changes).await
    }
}

impl std::fmt::Debug for ConfigUpdates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigUpdates").field("instance_id", &self.instance_id).finish_non_exhaustive()
    }
}

/// Builds a module from its (spec-checked) config JSON. Must not block on
/// the network: connect lazily on first use.
pub type Factory = fn(&InstanceContext, &serde_json::Value) -> Result<Arc<dyn StorageModule>>;

/// One provider type, as submitted by its crate.
#[derive(Debug)]
pub struct ProviderRegistration {
    /// Key stored in `storage_modules.provider_type` (`s3`, `local_fs`, ...).
    pub provider_type: &'static str,
    /// How the admin UI names the provider.
    pub display_name: &'static str,
    /// Group of the "add module" form.
    pub category: ProviderCategory,
    /// `env!("CARGO_PKG_NAME")` of the registering crate (for conflict reports).
    pub crate_name: &'static str,
    /// One sentence for the "add module" form.
    pub description: &'static str,
    /// The config spec (drives the CLI, the form and the config check).
    pub fields: &'static [ConfigField],
    /// Builds a module from a checked config.
    pub factory: Factory,
}

inventory::collect!(ProviderRegistration);

impl ProviderRegistration {
    /// The registration of a provider whose config is declared with
    /// `#[csal_core::config]` (type, name, category and description come
    /// from there); what [`register_provider!`](crate::register_provider)`(Config, factory)` submits.
    pub const fn of<C: ConfigSpec>(crate_name: &'static str, factory: Factory) -> Self {
        ProviderRegistration {
            provider_type: C::PROVIDER,
            display_name: C::DISPLAY_NAME,
            category: C::CATEGORY,
            crate_name,
            description: C::DESCRIPTION,
            fields: C::FIELDS,
            factory,
        }
    }

    /// Check `config` against this provider's field spec: an object, no
    /// unknown field, every required field present, each of the right type.
    /// Errors are `InvalidConfig` naming the field.
    pub fn check_config(&self, config: &serde_json::Value) -> Result<()> {
        check_config(self.provider_type, self.fields, config)
    }

    /// Check the config, then build the module.
    pub fn build(&self, ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
        self.check_config(config)?;
        (self.factory)(ctx, config)
    }

    /// The spec of config key `key`.
    pub fn field(&self, key: &str) -> Option<&ConfigField> {
        self.fields.iter().find(|f| f.key == key)
    }
}

/// Submit a provider from its crate: its `#[csal_core::config]` struct and
/// its factory, or a whole [`ProviderRegistration`].
///
/// ```
/// use std::sync::Arc;
/// use csal_core::{InstanceContext, Result, StorageModule};
///
/// /// Instance config of a provider that keeps objects in a folder.
/// #[csal_core::config(provider = "my_folder", name = "My folder", category = local,
///                     description = "Objects as files in a folder.")]
/// pub struct MyFolderConfig {
///     /// Folder that holds the objects.
///     #[field(label = "Folder", path)]
///     pub root: String,
/// }
///
/// fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
///     let config: MyFolderConfig = csal_core::parse_config("my_folder", config)?;
///     # let _ = config;
///     # unimplemented!("the provider's module")
///     // Arc::new(MyFolderModule::new(config)?)
/// }
///
/// csal_core::register_provider!(MyFolderConfig, build);
///
/// # fn main() {
/// let registration = csal_core::registry::find_provider("my_folder").unwrap();
/// assert_eq!(registration.display_name, "My folder");
/// assert!(registration.field("root").is_some());
/// # }
/// ```
#[macro_export]
macro_rules! register_provider {
    ($config:ty, $factory:expr $(,)?) => {
        $crate::inventory::submit! {
            $crate::ProviderRegistration::of::<$config>(env!("CARGO_PKG_NAME"), $factory)
        }
    };
    ($registration:expr) => {
        $crate::inventory::submit! { $registration }
    };
}

/// Make sure the named provider crates are linked into this binary, so
/// their registrations are present. Call once, at module level, in the
/// application's `main.rs` or `lib.rs`:
///
/// ```
/// csal_core::link_providers!(csal_memory);
///
/// # fn main() {
/// assert!(csal_core::registry::find_provider("memory").is_ok());
/// # }
/// ```
///
/// rustc drops a dependency that no code refers to (and its `inventory`
/// submissions with it); naming the crate here is that reference.
#[macro_export]
macro_rules! link_providers {
    ($($krate:ident),+ $(,)?) => {
        $( #[allow(unused_imports)] use $krate as _; )+
    };
}

/// Every registered provider, sorted by provider_type (duplicates included).
pub fn registered_providers() -> Vec<&'static ProviderRegistration> {
    let mut all: Vec<&'static ProviderRegistration> = inventory::iter::<ProviderRegistration>.into_iter().collect();
    all.sort_by(|a, b| a.provider_type.cmp(b.provider_type).then(a.crate_name.cmp(b.crate_name)));
    all
}

/// The one registration for `provider_type`.
/// Unknown or registered twice: `InvalidConfig` saying which.
pub fn find_provider(provider_type: &str) -> Result<&'static ProviderRegistration> {
    let matches: Vec<_> = registered_providers().into_iter().filter(|r| r.provider_type == provider_type).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let known: Vec<&str> = registered_providers().iter().map(|r| r.provider_type).collect();
            Err(StorageError::invalid_config(format!(
                "unknown provider type '{provider_type}' (registered: {}); is its crate listed in link_providers!?",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            )))
        }
        many => Err(StorageError::invalid_config(format!(
            "provider type '{provider_type}' is registered more than once (by crates {}); remove one",
            many.iter().map(|r| r.crate_name).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Provider types registered more than once, with the crates that did it.
pub fn registry_conflicts() -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut by_type: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for r in registered_providers() {
        by_type.entry(r.provider_type).or_default().push(r.crate_name);
    }
    by_type.retain(|_, crates| crates.len() > 1);
    by_type
}
