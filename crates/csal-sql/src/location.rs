//! Connecting to SQLite or PostgreSQL through `sqlx::Any`, one code path
//! for both.
//!
//! - `postgres://` / `postgresql://` URLs select PostgreSQL; the password may
//!   be given apart (the `password` secret field) and is put into the URL
//!   only in memory.
//! - `sqlite://path`, `sqlite:path` or a bare file path select SQLite; the
//!   file (and its folder) is created on first use, the journal is switched
//!   to WAL so readers never block the writer and a killed process leaves the
//!   last committed state.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use csal_core::{Result, StorageError};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Connection, Executor};

use crate::Backend;
use crate::error::map_sqlx;

/// A parsed database location. `Debug` hides the URL (it may hold a password).
#[derive(Clone)]
pub struct DbLocation {
    /// Which database the URL names.
    pub backend: Backend,
    /// Full connection URL, password included: keep private.
    url: String,
    /// The URL without password, safe to show.
    display: String,
}

impl fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbLocation").field("backend", &self.backend).field("url", &self.display).finish()
    }
}

impl DbLocation {
    /// Parse `url`. `password`, if given, replaces any password in a
    /// PostgreSQL URL. With `allow_inline_password` false a password written
    /// into the URL itself is refused (it would be stored in clear).
    pub fn parse(url: &str, password: Option<&str>, allow_inline_password: bool) -> Result<Self> {
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(StorageError::invalid_config("database URL is empty"));
        }
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let mut parsed = url::Url::parse(trimmed)
                .map_err(|e| StorageError::invalid_config(format!("field 'url': not a valid PostgreSQL URL ({e})")))?;
            if parsed.password().is_some() && !allow_inline_password {
                return Err(StorageError::invalid_config(
                    "field 'url' contains a password; put it in the 'password' field so it is stored encrypted",
                ));
            }
            require_verification_with_root_cert(&mut parsed)?;
            if let Some(pw) = password.filter(|p| !p.is_empty()) {
                parsed
                    .set_password(Some(pw))
                    .map_err(|()| StorageError::invalid_config("field 'url': this URL cannot carry a password"))?;
            }
            let mut shown = parsed.clone();
            if shown.password().is_some() {
                let _ = shown.set_password(Some(csal_core::secret::MASK));
            }
            return Ok(DbLocation { backend: Backend::Postgres, url: parsed.to_string(), display: shown.to_string() });
        }
        if lower.contains("://") && !lower.starts_with("sqlite:") {
            return Err(StorageError::invalid_config(format!(
                "field 'url': unsupported database URL scheme in '{}' (use sqlite:// or postgres://)",
                trimmed.split("://").next().unwrap_or("")
            )));
        }
        let path = trimmed.strip_prefix("sqlite://").or_else(|| trimmed.strip_prefix("sqlite:")).unwrap_or(trimmed);
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        if path.is_empty() {
            return Err(StorageError::invalid_config("field 'url': SQLite URL has no file path"));
        }
        let mut url = format!("sqlite://{path}");
        let mut params: Vec<String> = query.map(|q| q.split('&').map(str::to_owned).collect()).unwrap_or_default();
        if path != ":memory:" && !params.iter().any(|p| p.starts_with("mode=")) {
            params.push("mode=rwc".to_owned());
        }
        if !params.is_empty() {
            url.push('?');
            url.push_str(&params.join("&"));
        }
        Ok(DbLocation { backend: Backend::Sqlite, display: url.clone(), url })
    }

    /// `url` (PostgreSQL) with `sslrootcert` set to `ca_file`, unless the URL
    /// names one already: the catalog's `--catalog-ca-file`.
    pub fn with_root_cert(url: &str, ca_file: &str) -> Result<String> {
        let lower = url.trim().to_ascii_lowercase();
        if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
            return Err(StorageError::invalid_config("a CA file is for postgres:// catalogs (SQLite has no TLS)"));
        }
        let mut parsed = url::Url::parse(url.trim())
            .map_err(|e| StorageError::invalid_config(format!("field 'url': not a valid PostgreSQL URL ({e})")))?;
        if !parsed.query_pairs().any(|(k, _)| k == "sslrootcert") {
            parsed.query_pairs_mut().append_pair("sslrootcert", ca_file);
        }
        Ok(parsed.to_string())
    }

    /// The URL with any password masked.
    pub fn display_url(&self) -> &str {
        &self.display
    }

    /// The SQLite file path (None for PostgreSQL or in-memory).
    pub fn sqlite_path(&self) -> Option<&str> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let p = self.url.strip_prefix("sqlite://")?;
        let p = p.split('?').next().unwrap_or(p);
        (p != ":memory:").then_some(p)
    }

    /// Open a pool (connects once to check the database answers). On SQLite
    /// the parent folder is created and the journal set to WAL.
    pub async fn connect(&self, max_connections: u32, acquire_timeout: Duration) -> Result<AnyPool> {
        install_default_drivers();
        if let Some(path) = self.sqlite_path()
            && let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| StorageError::from(e).with_operation(csal_core::Operation::Construct))?;
        }
        let backend = self.backend;
        // One direct attempt first: the pool retries a refused connection
        // until its acquire timeout (it assumes a server still starting), so
        // a server that is down would otherwise cost the whole timeout.
        match tokio::time::timeout(acquire_timeout, sqlx::AnyConnection::connect(&self.url)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => return Err(map_sqlx(e, backend, &format!("connect to {}", self.display))),
            Err(_) => {
                return Err(StorageError::timeout(format!(
                    "connect to {}: no answer within {} s ({backend})",
                    self.display,
                    acquire_timeout.as_secs()
                )));
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(acquire_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // Wait (up to 10 s) for a concurrent writer instead of failing at once.
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect(&self.url)
            .await
            .map_err(|e| map_sqlx(e, backend, &format!("connect to {}", self.display)))?;
        if backend == Backend::Sqlite && self.sqlite_path().is_some() {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(|e| map_sqlx(e, backend, "switch SQLite to WAL"))?;
        }
        Ok(pool)
    }
}

/// TLS to PostgreSQL as libpq's URL parameters say (`sslmode`,
/// `sslrootcert`), the trust policy kept: `sslrootcert` is checked now
/// (readable PEM certificates), and a root certificate without an `sslmode`
/// means `verify-full` (sqlx's default, `prefer`, would not check the
/// certificate at all; libpq itself goes to `verify-ca` in that case).
fn require_verification_with_root_cert(url: &mut url::Url) -> Result<()> {
    let root_cert = url.query_pairs().find(|(k, _)| k == "sslrootcert").map(|(_, v)| v.into_owned());
    let Some(root_cert) = root_cert else { return Ok(()) };
    csal_core::tls::CaFile::load_as("sslrootcert", &root_cert)?;
    if !url.query_pairs().any(|(k, _)| k == "sslmode") {
        url.query_pairs_mut().append_pair("sslmode", "verify-full");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_the_backend() {
        let l = DbLocation::parse("/tmp/x/cat.db", None, false).unwrap();
        assert_eq!(l.backend, Backend::Sqlite);
        assert_eq!(l.sqlite_path(), Some("/tmp/x/cat.db"));
        let l = DbLocation::parse("sqlite://rel.db", None, false).unwrap();
        assert_eq!(l.sqlite_path(), Some("rel.db"));
        let l = DbLocation::parse("postgres://csal@127.0.0.1:15432/csal", Some("pw!secret"), false).unwrap();
        assert_eq!(l.backend, Backend::Postgres);
        assert!(!format!("{l:?}").contains("pw!secret"));
        assert!(!l.display_url().contains("pw!secret"));
        let e = DbLocation::parse("postgres://csal:inline@h/db", None, false).unwrap_err();
        assert!(e.message().contains("'password'") && !e.message().contains("inline"));
        assert!(DbLocation::parse("mysql://x", None, true).is_err());
        assert!(DbLocation::parse("  ", None, true).is_err());
    }
}
