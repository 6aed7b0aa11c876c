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
use crate::secret::is_blank;

/// How an admin thinks of a provider (groups the "add module" form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderCategory {
    ObjectStorage,
    FileSync,
    NetworkProtocol,
    Local,
    Database,
}

/// The type of one config field; drives the CLI, the admin form and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "options")]
pub enum FieldKind {
    Text,
    Number,
    Bool,
    /// A password, key or token: write-only in forms, masked everywhere.
    Secret,
    /// A multi-line secret such as a private key or a service-account JSON.
    SecretMultiline,
    Select(&'static [&'static str]),
    Url,
    Path,
}

impl FieldKind {
    pub fn is_secret(self) -> bool {
        matches!(self, FieldKind::Secret | FieldKind::SecretMultiline)
    }
}

/// One field of a provider's config spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ConfigField {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    /// Default as JSON text (`"30"`, `"true"`, `"\"us-east-1\""`).
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// The provider's own page about this value.
    pub doc_url: Option<&'static str>,
}

impl ConfigField {
    const fn new(key: &'static str, label: &'static str, kind: FieldKind) -> Self {
        ConfigField { key, label, kind, required: false, default: None, help: "", doc_url: None }
    }
    pub const fn text(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Text)
    }
    pub const fn number(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Number)
    }
    pub const fn bool(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Bool)
    }
    pub const fn secret(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Secret)
    }
    pub const fn secret_multiline(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::SecretMultiline)
    }
    pub const fn select(key: &'static str, label: &'static str, options: &'static [&'static str]) -> Self {
        Self::new(key, label, FieldKind::Select(options))
    }
    pub const fn url(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Url)
    }
    pub const fn path(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Path)
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn default(mut self, json: &'static str) -> Self {
        self.default = Some(json);
        self
    }
    pub const fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }
    pub const fn doc(mut self, url: &'static str) -> Self {
        self.doc_url = Some(url);
        self
    }
}

/// Who is asking a factory for a module (for logs and error context), and
/// where the module may write back config values it changes itself.
#[derive(Debug, Clone)]
pub struct InstanceContext {
    pub id: String,
    pub name: String,
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
    pub display_name: &'static str,
    pub category: ProviderCategory,
    /// `env!("CARGO_PKG_NAME")` of the registering crate (for conflict reports).
    pub crate_name: &'static str,
    pub description: &'static str,
    pub fields: &'static [ConfigField],
    pub factory: Factory,
}

inventory::collect!(ProviderRegistration);

impl ProviderRegistration {
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

    pub fn field(&self, key: &str) -> Option<&ConfigField> {
        self.fields.iter().find(|f| f.key == key)
    }
}

/// Submit a [`ProviderRegistration`] from a provider crate.
///
/// ```ignore
/// csal_core::register_provider!(csal_core::ProviderRegistration {
///     provider_type: "local_fs", /* ... */
/// });
/// ```
#[macro_export]
macro_rules! register_provider {
    ($registration:expr) => {
        $crate::inventory::submit! { $registration }
    };
}

/// Make sure the named provider crates are linked into this binary, so
/// their registrations are present. Call once, at module level, in the
/// application's `main.rs` or `lib.rs`:
///
/// ```ignore
/// csal_core::link_providers!(csal_local_fs, csal_s3);
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

/// See [`ProviderRegistration::check_config`].
pub fn check_config(provider_type: &str, fields: &[ConfigField], config: &serde_json::Value) -> Result<()> {
    let invalid = |msg: String| Err(StorageError::invalid_config(msg).with_provider(provider_type.to_owned()));
    let Some(map) = config.as_object() else {
        return invalid("config must be a JSON object".to_owned());
    };
    for key in map.keys() {
        if !fields.iter().any(|f| f.key == key) {
            let known: Vec<&str> = fields.iter().map(|f| f.key).collect();
            return invalid(format!("unknown field '{key}' (known fields: {})", known.join(", ")));
        }
    }
    for field in fields {
        let value = map.get(field.key);
        let missing = value.is_none_or(is_blank);
        if missing {
            if field.required {
                return invalid(format!("missing required field '{}' ({})", field.key, field.label));
            }
            continue;
        }
        let value = value.expect("present");
        let type_ok = match field.kind {
            FieldKind::Text | FieldKind::Secret | FieldKind::SecretMultiline | FieldKind::Path => value.is_string(),
            FieldKind::Url => value.as_str().is_some_and(looks_like_url),
            FieldKind::Number => value.is_number(),
            FieldKind::Bool => value.is_boolean(),
            FieldKind::Select(options) => value.as_str().is_some_and(|v| options.contains(&v)),
        };
        if !type_ok {
            let expected = match field.kind {
                FieldKind::Text | FieldKind::Path => "a string".to_owned(),
                FieldKind::Secret | FieldKind::SecretMultiline => "a string (secret)".to_owned(),
                FieldKind::Url => "an http:// or https:// URL".to_owned(),
                FieldKind::Number => "a number".to_owned(),
                FieldKind::Bool => "true or false".to_owned(),
                FieldKind::Select(options) => format!("one of {}", options.join(", ")),
            };
            return invalid(format!("field '{}' must be {expected}", field.key));
        }
    }
    Ok(())
}

fn looks_like_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.chars().any(char::is_whitespace))
}

/// Parse a typed config from JSON; errors name the field that failed.
/// Call after [`check_config`] (the router does), so values of secret fields
/// are never echoed.
pub fn parse_config<T: serde::de::DeserializeOwned>(provider_type: &str, config: &serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(config).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde's message can quote the offending value; keep only its class.
        let what = inner.to_string();
        let what = what.split(':').next().unwrap_or("invalid value").trim().to_owned();
        StorageError::invalid_config(format!("field '{path}': {what}")).with_provider(provider_type.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    const FIELDS: &[ConfigField] = &[
        ConfigField::text("bucket", "Bucket").required(),
        ConfigField::url("endpoint", "Endpoint"),
        ConfigField::number("part_size_mb", "Part size"),
        ConfigField::secret("secret_key", "Secret key"),
        ConfigField::select("mode", "Mode", &["a", "b"]),
    ];

    fn err(cfg: serde_json::Value) -> String {
        let e = check_config("t", FIELDS, &cfg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        e.message().to_owned()
    }

    #[test]
    fn config_errors_name_the_field() {
        assert!(err(json!({})).contains("'bucket'"));
        assert!(err(json!({"bucket": ""})).contains("'bucket'"));
        assert!(err(json!({"bucket": "b", "nope": 1})).contains("'nope'"));
        assert!(err(json!({"bucket": "b", "endpoint": "ftp://x"})).contains("'endpoint'"));
        assert!(err(json!({"bucket": "b", "part_size_mb": "8"})).contains("'part_size_mb'"));
        assert!(err(json!({"bucket": "b", "mode": "c"})).contains("'mode'"));
        assert!(err(json!([1])).contains("JSON object"));
        check_config("t", FIELDS, &json!({"bucket": "b", "endpoint": "http://127.0.0.1:9000", "mode": "a"})).unwrap();
    }

    #[test]
    fn type_errors_do_not_echo_secret_values() {
        let m = err(json!({"bucket": "b", "secret_key": 1234567}));
        assert!(m.contains("'secret_key'") && !m.contains("1234567"));
    }

    #[test]
    fn parse_config_names_the_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct C {
            n: u32,
        }
        let e = parse_config::<C>("t", &json!({"n": "topsecretvalue"})).unwrap_err();
        assert!(e.message().contains("'n'"), "{e}");
        assert!(!e.to_string().contains("topsecretvalue"));
    }
}
