//! `db` provider config: where the database is and which tables to use.

use csal_core::{ConfigField, Result, SecretString, StorageError, parse_config};
use serde::Deserialize;

use crate::client::DbLocation;

pub const PROVIDER_TYPE: &str = "db";

/// Size of one chunk row.
pub const CHUNK_SIZE: usize = 1024 * 1024;

/// The config spec (drives the CLI, the admin form and validation).
pub const FIELDS: &[ConfigField] = &[
    ConfigField::text("url", "Database URL").required().help(
        "sqlite:///var/lib/csal/objects.db, a bare file path, or postgres://user@host:5432/dbname (no password in it)",
    ),
    ConfigField::secret("password", "Database password").help("PostgreSQL password; stored encrypted, never shown"),
    ConfigField::text("table_prefix", "Table prefix")
        .default("\"csal_\"")
        .help("Prefix of the two tables (<prefix>objects, <prefix>chunks); letters, digits and _ only"),
    ConfigField::number("max_connections", "Max connections").default("4").help("Connection pool size (1-64)"),
    ConfigField::number("connect_timeout_secs", "Connect timeout (s)")
        .default("5")
        .help("How long to wait for a database connection before failing (1-120)"),
];

/// Typed config of one `db` instance. `Debug` never shows the password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbConfig {
    pub url: String,
    #[serde(default)]
    pub password: Option<SecretString>,
    #[serde(default = "default_prefix")]
    pub table_prefix: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| csal_core::secret::MASK))
            .field("table_prefix", &self.table_prefix)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .finish()
    }
}

fn default_prefix() -> String {
    "csal_".to_owned()
}
fn default_max_connections() -> u32 {
    4
}
fn default_connect_timeout() -> u64 {
    5
}

impl DbConfig {
    /// Parse and check a spec-checked config JSON.
    pub fn from_json(config: &serde_json::Value) -> Result<Self> {
        let mut cfg: DbConfig = parse_config(PROVIDER_TYPE, config)?;
        if cfg.password.as_ref().is_some_and(|p| csal_core::ExposeSecret::expose_secret(p).is_empty()) {
            cfg.password = None;
        }
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<()> {
        let invalid = |m: String| Err(StorageError::invalid_config(m).with_provider(PROVIDER_TYPE));
        if self.table_prefix.len() > 32 || !self.table_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return invalid("field 'table_prefix' must be at most 32 letters, digits or '_'".to_owned());
        }
        if self.table_prefix.starts_with(|c: char| c.is_ascii_digit()) {
            return invalid("field 'table_prefix' must not start with a digit".to_owned());
        }
        if !(1..=64).contains(&self.max_connections) {
            return invalid("field 'max_connections' must be between 1 and 64".to_owned());
        }
        if !(1..=120).contains(&self.connect_timeout_secs) {
            return invalid("field 'connect_timeout_secs' must be between 1 and 120".to_owned());
        }
        self.location().map(|_| ())
    }

    /// Where to connect (password applied in memory only).
    pub fn location(&self) -> Result<DbLocation> {
        let password = self.password.as_ref().map(csal_core::ExposeSecret::expose_secret);
        DbLocation::parse(&self.url, password, false).map_err(|e| e.with_provider(PROVIDER_TYPE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_values_name_the_field() {
        let e = DbConfig::from_json(&json!({"url": "/tmp/a.db", "table_prefix": "x; drop"})).unwrap_err();
        assert!(e.message().contains("'table_prefix'"));
        let e = DbConfig::from_json(&json!({"url": "/tmp/a.db", "max_connections": 0})).unwrap_err();
        assert!(e.message().contains("'max_connections'"));
        let e = DbConfig::from_json(&json!({"url": "postgres://u:hunter2@h/d"})).unwrap_err();
        assert!(e.message().contains("'url'") && !e.to_string().contains("hunter2"));
        let ok = DbConfig::from_json(&json!({"url": "postgres://u@h/d", "password": "hunter2"})).unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
    }
}
