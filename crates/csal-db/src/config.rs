//! `db` provider config: where the database is and which tables to use.

use csal_core::{Result, SecretString, StorageError, parse_config};

use csal_sql::DbLocation;

/// The `provider_type` this crate registers (`db`).
pub const PROVIDER_TYPE: &str = <DbConfig as csal_core::ConfigSpec>::PROVIDER;

/// Size of one chunk row.
pub const CHUNK_SIZE: usize = 1024 * 1024;

/// Typed config of one `db` instance. `Debug` never shows the password.
#[csal_core::config(
    provider = "db",
    name = "Database (SQLite / PostgreSQL)",
    category = database,
    description = "Objects as 1 MiB chunk rows in an SQLite file or a PostgreSQL database"
)]
pub struct DbConfig {
    /// sqlite:///var/lib/csal/objects.db, a bare file path, or postgres://user@host:5432/dbname (no password in it)
    #[field(label = "Database URL", credential_target)]
    pub url: String,
    /// PostgreSQL password; stored encrypted, never shown
    #[field(label = "Database password")]
    pub password: Option<SecretString>,
    /// Prefix of the two tables (<prefix>objects, <prefix>chunks); letters, digits and _ only
    #[field(label = "Table prefix", default = "csal_")]
    pub table_prefix: String,
    /// Connection pool size (1-64)
    #[field(label = "Max connections", default = 4)]
    pub max_connections: u32,
    /// How long to wait for a database connection before failing (1-120)
    #[field(label = "Connect timeout (s)", default = 5)]
    pub connect_timeout_secs: u64,
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
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<DbConfig>();
    }

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
