//! API tokens with scopes (table `api_tokens`, migration 2).
//!
//! A token is `csal_` + 30 random bytes (URL-safe base64), shown once; only
//! its SHA-256 is stored. Each carries one scope:
//!
//! | scope | may |
//! |---|---|
//! | `ingest` | PUT segments and playlists (a recorder) |
//! | `read` | read the segment index and play segments back (a viewer) |
//! | `admin` | everything, including the admin API |
//!
//! Create and revoke are single statements, so a revocation cannot be
//! undone by a concurrent create (each token is its own row).

use std::time::SystemTime;

use base64::Engine;
use csal_core::{ErrorKind, Result, StorageError};
use csal_sql::map_sqlx;
use serde::Serialize;
use sha2::Digest;
use sqlx::Row;

use crate::Catalog;
use crate::records::{check_key, ms_to_time, now_ms};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Upload segments and playlists, nothing else.
    Ingest,
    /// Read the index and play segments back, nothing else.
    Read,
    /// Everything.
    Admin,
}

impl TokenScope {
    /// `ingest`, `read` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Ingest => "ingest",
            TokenScope::Read => "read",
            TokenScope::Admin => "admin",
        }
    }

    /// Whether a token of this scope may do what `needed` allows.
    pub fn permits(self, needed: TokenScope) -> bool {
        self == TokenScope::Admin || self == needed
    }
}

impl std::str::FromStr for TokenScope {
    type Err = StorageError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ingest" => Ok(TokenScope::Ingest),
            "read" => Ok(TokenScope::Read),
            "admin" => Ok(TokenScope::Admin),
            other => {
                Err(StorageError::invalid_input(format!("unknown token scope '{other}': use ingest, read or admin")))
            }
        }
    }
}

impl std::fmt::Display for TokenScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiTokenInfo {
    /// The name it was created under.
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// When it was created.
    #[serde(serialize_with = "crate::records::ser_time")]
    pub created_at: SystemTime,
}

/// The settings key where tokens lived before migration 2 (all `admin`).
pub const LEGACY_TOKENS_SETTING: &str = "admin.api_tokens";

/// `n` random bytes as URL-safe base64 (no padding).
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

fn sha256_hex(s: &str) -> String {
    sha2::Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl Catalog {
    /// Create a token called `name` with `scope`; returns the token, which
    /// is not stored and cannot be shown again.
    pub async fn create_token(&self, name: &str, scope: TokenScope) -> Result<String> {
        check_key("token name", name)?;
        let token = format!("csal_{}", random_token(30));
        sqlx::query("INSERT INTO api_tokens (name, sha256, scope, created_at) VALUES ($1, $2, $3, $4)")
            .bind(name)
            .bind(sha256_hex(&token))
            .bind(scope.as_str())
            .bind(now_ms())
            .execute(self.pool())
            .await
            .map_err(|e| match map_sqlx(e, self.backend(), "create API token") {
                e if e.kind() == ErrorKind::AlreadyExists => {
                    StorageError::already_exists(format!("an API token named '{name}' exists; revoke it first"))
                }
                e => e,
            })?;
        Ok(token)
    }

    /// Revoke the token called `name` (`NotFound` if there is none).
    pub async fn revoke_token(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(|e| map_sqlx(e, self.backend(), "revoke API token"))?;
        if done.rows_affected() == 0 {
            return Err(StorageError::not_found(format!("no API token named '{name}'")));
        }
        Ok(())
    }

    /// Every token's name, scope and creation time, by name.
    pub async fn list_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        let rows = sqlx::query("SELECT name, scope, created_at FROM api_tokens ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(|e| map_sqlx(e, self.backend(), "list API tokens"))?;
        rows.iter().map(|r| self.parse_token(r)).collect()
    }

    /// The token's record, if `token` is a valid token.
    pub async fn verify_token(&self, token: &str) -> Result<Option<ApiTokenInfo>> {
        if !token.starts_with("csal_") || token.len() > 200 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT name, scope, created_at FROM api_tokens WHERE sha256 = $1")
            .bind(sha256_hex(token))
            .fetch_optional(self.pool())
            .await
            .map_err(|e| map_sqlx(e, self.backend(), "check API token"))?;
        row.map(|r| self.parse_token(&r)).transpose()
    }

    fn parse_token(&self, row: &sqlx::any::AnyRow) -> Result<ApiTokenInfo> {
        let err = |e| map_sqlx(e, self.backend(), "read API token");
        let scope: String = row.try_get("scope").map_err(err)?;
        Ok(ApiTokenInfo {
            name: row.try_get("name").map_err(err)?,
            scope: scope.parse()?,
            created_at: ms_to_time(row.try_get("created_at").map_err(err)?),
        })
    }
}

/// Tokens made before scopes existed were a JSON list in a setting; move
/// them into `api_tokens` as `admin` tokens (what they could do), once.
pub(crate) async fn import_legacy_tokens(catalog: &Catalog) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Legacy {
        name: String,
        sha256: String,
        #[serde(default)]
        created_unix: i64,
    }
    let Some(json) = catalog.get_setting(LEGACY_TOKENS_SETTING).await? else { return Ok(()) };
    let legacy: Vec<Legacy> = serde_json::from_str(&json).unwrap_or_default();
    let err = |e| map_sqlx(e, catalog.backend(), "move API tokens into their table");
    let mut tx = catalog.pool().begin().await.map_err(err)?;
    for t in &legacy {
        sqlx::query(
            "INSERT INTO api_tokens (name, sha256, scope, created_at) VALUES ($1, $2, 'admin', $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&t.name)
        .bind(&t.sha256)
        .bind(t.created_unix.saturating_mul(1000))
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    }
    sqlx::query("DELETE FROM csal_settings WHERE key = $1")
        .bind(LEGACY_TOKENS_SETTING)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)?;
    tracing::info!(tokens = legacy.len(), "API tokens moved into the api_tokens table (scope admin)");
    Ok(())
}
