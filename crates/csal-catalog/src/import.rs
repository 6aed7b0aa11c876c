//! Moving an existing recording system onto CSAL: read its seed-shaped
//! `storage_modules` table (integer ids, datetime columns, nullable
//! `is_enabled`, `config_json` as text, the legacy config keys of its eight
//! providers) and, if present, `camera_storage_policies`
//! (`camera_id`, `storage_targets` as a JSON list or comma-separated
//! names), and create the same modules and policies here, secrets sealed.
//!
//! The source is opened read-only and never changed (SQLite `mode=ro`,
//! PostgreSQL read-only transactions). Every row is imported or reported
//! with the reason; a legacy key with no equivalent is an error for that
//! row, never silently dropped. A dry run reports the same plan and
//! creates nothing.

use std::time::Duration;

use csal_core::{Result, StorageError, find_provider};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{AnyConnection, Connection, Row};

use crate::{CameraPolicy, Catalog, NewModule, check_module_name};

/// Legacy config keys of the seed's providers and the keys they became
/// (the same table is in docs/catalog.md). Keys not listed are kept as
/// they are and must be valid for the provider.
pub const LEGACY_KEYS: &[(&str, &str, &str)] = &[
    ("local_fs", "path", "root"),
    ("local_fs", "base_path", "root"),
    ("local_fs", "directory", "root"),
    ("s3", "bucket_name", "bucket"),
    ("s3", "region_name", "region"),
    ("s3", "endpoint_url", "endpoint"),
    ("s3", "aws_access_key_id", "access_key"),
    ("s3", "access_key_id", "access_key"),
    ("s3", "aws_secret_access_key", "secret_key"),
    ("s3", "secret_access_key", "secret_key"),
    ("s3", "aws_session_token", "session_token"),
    ("s3", "key_prefix", "prefix"),
    ("gcs", "bucket_name", "bucket"),
    ("gcs", "credentials", "credentials_json"),
    ("gcs", "service_account_json", "credentials_json"),
    ("gcs", "credentials_file", "credentials_path"),
    ("gcs", "service_account_file", "credentials_path"),
    ("azure_blob", "account_name", "account"),
    ("azure_blob", "container_name", "container"),
    ("dropbox", "root", "root_path"),
    ("dropbox", "folder", "root_path"),
    ("dropbox", "base_path", "root_path"),
    ("webdav", "base_url", "url"),
    ("webdav", "hostname", "url"),
    ("webdav", "login", "username"),
    ("webdav", "user", "username"),
    ("gdrive", "folder_id", "root_folder_id"),
    ("gdrive", "parent_folder_id", "root_folder_id"),
    ("gdrive", "service_account_info", "service_account_json"),
    ("gdrive", "credentials_json", "service_account_json"),
];

/// What happened (or, dry, would happen) to one source row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRow {
    /// `module` or `policy`.
    pub kind: &'static str,
    /// The module name or camera id.
    pub name: String,
    /// `imported`, `would import`, `skipped` or `failed`.
    pub outcome: &'static str,
    /// Renamed legacy keys (`old -> new`), or why it was not imported.
    pub detail: String,
}

/// What an import did (or, dry, would do), row by row.
///
/// `#[non_exhaustive]`: imports will report more; only csal-catalog builds it.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct ImportReport {
    /// Nothing was written: the rows say what would be.
    pub dry_run: bool,
    /// One row per source row, in source order.
    pub rows: Vec<ImportRow>,
}

impl ImportReport {
    /// How many rows failed.
    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| r.outcome == "failed").count()
    }
}

struct SourceModule {
    id: String,
    name: String,
    label: Option<String>,
    provider_type: String,
    is_enabled: bool,
    config_json: Option<String>,
}

/// The config of a legacy row in this CSAL's terms, and the renames made.
pub fn map_legacy_config(provider_type: &str, config: Map<String, Value>) -> Result<(Value, Vec<String>)> {
    let mut out = Map::new();
    let mut renamed = Vec::new();
    for (key, value) in config {
        let target = LEGACY_KEYS
            .iter()
            .find(|(p, old, _)| *p == provider_type && *old == key)
            .map(|(_, _, new)| (*new).to_owned());
        let value = match value {
            // Legacy code kept service-account JSON as an object; CSAL takes it as text.
            Value::Object(_) if target.as_deref().is_some_and(|t| t.ends_with("_json")) => {
                Value::String(value.to_string())
            }
            v => v,
        };
        let new_key = target.clone().unwrap_or_else(|| key.clone());
        if out.insert(new_key.clone(), value).is_some() {
            return Err(StorageError::invalid_config(format!("keys '{key}' and another both map to '{new_key}'")));
        }
        if target.is_some() {
            renamed.push(format!("{key} -> {new_key}"));
        }
    }
    Ok((Value::Object(out), renamed))
}

/// Open the source read-only: `sqlite:///path`, a plain path, or
/// `postgres://...`.
async fn open_source(url: &str) -> Result<AnyConnection> {
    sqlx::any::install_default_drivers();
    let lower = url.to_ascii_lowercase();
    let conn_url = if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        url.to_owned()
    } else {
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        if !std::path::Path::new(path).is_file() {
            return Err(StorageError::not_found(format!("no SQLite database at '{path}'")));
        }
        format!("sqlite://{path}?mode=ro")
    };
    let shown = csal_sql::DbLocation::parse(url, None, true).map(|l| l.display_url().to_owned()).unwrap_or_default();
    let connect = AnyConnection::connect(&conn_url);
    let mut conn = tokio::time::timeout(Duration::from_secs(20), connect)
        .await
        .map_err(|_| StorageError::timeout(format!("connect to {shown}: no answer within 20 s")))?
        .map_err(|e| StorageError::permanent(format!("cannot open the source database {shown}: {e}")))?;
    if conn_url.starts_with("postgres") {
        sqlx::query("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(|e| StorageError::permanent(format!("cannot make the source session read-only: {e}")))?;
    }
    Ok(conn)
}

async fn read_modules(conn: &mut AnyConnection) -> Result<Vec<SourceModule>> {
    // CAST keeps the Any driver happy with integer ids and nullable flags on both databases.
    let rows = sqlx::query(
        "SELECT CAST(id AS TEXT) AS id, name, label, provider_type, CAST(is_enabled AS BIGINT) AS is_enabled, \
         config_json FROM storage_modules ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| StorageError::invalid_input(format!("the source has no readable storage_modules table: {e}")))?;
    rows.iter()
        .map(|r| {
            let text = |c: &str| r.try_get::<Option<String>, _>(c).ok().flatten();
            Ok(SourceModule {
                id: text("id").unwrap_or_default(),
                name: text("name").unwrap_or_default(),
                label: text("label").filter(|l| !l.is_empty()),
                provider_type: text("provider_type").unwrap_or_default(),
                // A NULL flag predates the column: the row was in use.
                is_enabled: r.try_get::<Option<i64>, _>("is_enabled").ok().flatten().is_none_or(|v| v != 0),
                config_json: text("config_json"),
            })
        })
        .collect()
}

/// `(camera_id, targets)` of the source's policies, if it has the table.
async fn read_policies(conn: &mut AnyConnection) -> Vec<(String, std::result::Result<Vec<String>, String>)> {
    let Ok(rows) = sqlx::query("SELECT camera_id, storage_targets FROM camera_storage_policies ORDER BY camera_id")
        .fetch_all(&mut *conn)
        .await
    else {
        return Vec::new();
    };
    rows.iter()
        .map(|r| {
            let camera: String = r.try_get::<Option<String>, _>("camera_id").ok().flatten().unwrap_or_default();
            let raw: String = r.try_get::<Option<String>, _>("storage_targets").ok().flatten().unwrap_or_default();
            let targets = match serde_json::from_str::<Vec<String>>(&raw) {
                Ok(list) => Ok(list),
                Err(_) if !raw.trim_start().starts_with('[') => {
                    Ok(raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
                }
                Err(e) => Err(format!("storage_targets is not a JSON list of names ({e})")),
            };
            (camera, targets)
        })
        .collect()
}

impl Catalog {
    /// Import modules and camera policies from a seed-shaped database (see
    /// the module docs). Rows already here (same name / camera) are
    /// skipped, never overwritten.
    pub async fn import_seed(&self, source_url: &str, dry_run: bool) -> Result<ImportReport> {
        let mut conn = open_source(source_url).await?;
        let modules = read_modules(&mut conn).await?;
        let policies = read_policies(&mut conn).await;
        let _ = conn.close().await;
        let mut report = ImportReport { dry_run, rows: Vec::new() };
        let mut importable = Vec::new();
        for m in modules {
            let row = |outcome, detail: String| ImportRow { kind: "module", name: m.name.clone(), outcome, detail };
            match self.plan_module(&m).await {
                Ok((new, renamed)) if dry_run => {
                    importable.push(new.name.clone());
                    report.rows.push(row("would import", renamed.join(", ")));
                }
                Ok((new, renamed)) => match self.create_module(new).await {
                    Ok(rec) => {
                        importable.push(rec.name);
                        report.rows.push(row("imported", renamed.join(", ")));
                    }
                    Err(e) => report.rows.push(row("failed", e.message().to_owned())),
                },
                Err((outcome, why)) => report.rows.push(row(outcome, why)),
            }
        }
        // Cameras that have a policy here (read once, then kept up to date).
        let mut existing: std::collections::HashSet<String> =
            self.list_policies().await?.into_iter().map(|(camera, _)| camera).collect();
        for (camera, targets) in policies {
            let row = |outcome, detail: String| ImportRow { kind: "policy", name: camera.clone(), outcome, detail };
            let targets = match targets {
                Ok(t) => t,
                Err(why) => {
                    report.rows.push(row("failed", why));
                    continue;
                }
            };
            if existing.contains(&camera) {
                report.rows.push(row("skipped", "this camera already has a policy here".into()));
                continue;
            }
            if dry_run {
                let mut missing = None;
                for t in &targets {
                    if !importable.contains(t) && self.get_module(t).await.is_err() {
                        missing = Some(t.clone());
                        break;
                    }
                }
                match missing {
                    Some(t) => report.rows.push(row("failed", format!("target '{t}' is neither here nor imported"))),
                    None => report.rows.push(row("would import", targets.join(" -> "))),
                }
                continue;
            }
            match self.set_policy(&camera, CameraPolicy::new(targets.clone())).await {
                Ok(()) => {
                    existing.insert(camera.clone());
                    report.rows.push(row("imported", targets.join(" -> ")));
                }
                Err(e) => report.rows.push(row("failed", e.message().to_owned())),
            }
        }
        Ok(report)
    }

    /// The module a source row becomes, or (outcome, why not).
    async fn plan_module(
        &self,
        m: &SourceModule,
    ) -> std::result::Result<(NewModule, Vec<String>), (&'static str, String)> {
        let failed = |why: String| ("failed", why);
        check_module_name(&m.name).map_err(|e| failed(format!("row id {}: {}", m.id, e.message())))?;
        if self.get_module(&m.name).await.is_ok() {
            return Err(("skipped", "a module with this name already exists here".into()));
        }
        let reg = find_provider(&m.provider_type).map_err(|e| failed(e.message().to_owned()))?;
        let config = match m.config_json.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => Map::new(),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(failed("config_json is not a JSON object".into())),
                Err(e) => return Err(failed(format!("config_json is not valid JSON ({e})"))),
            },
        };
        if m.provider_type == "db" && !config.contains_key("url") {
            return Err(failed(
                "the legacy db provider kept files in the application's own database; add a db module with a url by hand"
                    .into(),
            ));
        }
        let (config, renamed) =
            map_legacy_config(&m.provider_type, config).map_err(|e| failed(e.message().to_owned()))?;
        reg.check_config(&config).map_err(|e| failed(e.message().to_owned()))?;
        let new = NewModule {
            name: m.name.clone(),
            label: m.label.clone(),
            provider_type: m.provider_type.clone(),
            is_enabled: m.is_enabled,
            config,
        };
        Ok((new, renamed))
    }
}
