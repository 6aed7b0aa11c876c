//! The public record types and input checks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use csal_core::{Result, StorageError, WriteReceipt};
use serde::Serialize;

/// One storage instance as shown to people: secret fields masked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleRecord {
    /// Catalog id (a ULID), stable across renames.
    pub id: String,
    /// Unique name used in policies and on the command line.
    pub name: String,
    /// Free text for people.
    pub label: Option<String>,
    /// The provider (`s3`, `local_fs`, ...).
    pub provider_type: String,
    /// Disabled instances are kept but not built.
    pub is_enabled: bool,
    /// The config with every secret field replaced by `********`.
    pub config: serde_json::Value,
    /// When the row was created.
    #[serde(serialize_with = "ser_time")]
    pub created_at: SystemTime,
    /// When the row last changed.
    #[serde(serialize_with = "ser_time")]
    pub updated_at: SystemTime,
}

pub(crate) fn ser_time<S: serde::Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    csal_core::time_format::option::serialize(&Some(*t), s)
}

/// A new storage instance. `Debug` never shows `config` (secrets in clear).
#[derive(Clone)]
pub struct NewModule {
    /// Unique name ([`check_module_name`](crate::check_module_name) rules).
    pub name: String,
    /// Free text for people.
    pub label: Option<String>,
    /// The provider to build it with.
    pub provider_type: String,
    /// Build it now (or keep it disabled).
    pub is_enabled: bool,
    /// The provider config, secrets in clear (sealed when stored).
    pub config: serde_json::Value,
}

impl std::fmt::Debug for NewModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewModule")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("provider_type", &self.provider_type)
            .field("is_enabled", &self.is_enabled)
            .finish_non_exhaustive()
    }
}

/// A change to an instance; `None` fields are left as they are.
///
/// `config`, when given, replaces the whole config, except secret fields:
/// a secret field that is absent, `""` or `"********"` keeps its stored
/// value; a secret field set to JSON `null` is removed.
#[derive(Clone, Default)]
pub struct ModuleUpdate {
    /// New label; `Some(None)` clears it.
    pub label: Option<Option<String>>,
    /// New config (see above for secret fields).
    pub config: Option<serde_json::Value>,
    /// Enable or disable.
    pub is_enabled: Option<bool>,
}

impl std::fmt::Debug for ModuleUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleUpdate")
            .field("label", &self.label)
            .field("config", &self.config.as_ref().map(|_| "<config>"))
            .field("is_enabled", &self.is_enabled)
            .finish()
    }
}

/// Where `write_for_camera` put a recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CameraWrite {
    /// Name of the storage instance that took the write.
    pub target: String,
    /// What the write returned.
    pub receipt: WriteReceipt,
    /// Targets passed over before it, each with the reason (secret-free).
    pub skipped: Vec<(String, String)>,
}

/// The one rule for module names (catalog, admin form, JSON API, CLI):
/// 1 to 64 of letters, digits, `_ . : -`, not starting with `.` (so never
/// `.` or `..`, which URLs would resolve). `:` allows the seed's
/// `gcs:corp-backups` style.
pub fn check_module_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::invalid_config(
            "field 'name' must be 1 to 64 characters of letters, digits, '_', '.', ':' or '-' (not starting with '.')",
        ))
    }
}

pub(crate) fn check_label(label: Option<&str>) -> Result<()> {
    match label {
        Some(l) if l.chars().count() > 200 || l.chars().any(char::is_control) => {
            Err(StorageError::invalid_config("field 'label' must be at most 200 characters without control characters"))
        }
        _ => Ok(()),
    }
}

/// Camera ids and setting keys: 1-128 visible characters.
pub(crate) fn check_key(what: &str, key: &str) -> Result<()> {
    if (1..=128).contains(&key.chars().count()) && !key.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Ok(())
    } else {
        Err(StorageError::invalid_input(format!(
            "{what} must be 1 to 128 characters without spaces or control characters"
        )))
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub(crate) fn ms_to_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        for ok in ["a", "gcs:corp-backups", "mycloud:archive", "cam_1.archive", "a..b", &"x".repeat(64)] {
            check_module_name(ok).unwrap();
        }
        for bad in ["", "a b", "ü", "a/b", ".", "..", ".hidden", "a%2f", "a?b", &"x".repeat(65)] {
            assert!(check_module_name(bad).unwrap_err().message().contains("'name'"), "{bad}");
        }
    }
}
