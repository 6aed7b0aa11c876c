//! The commands. Each opens the catalog itself (no server needed).

mod admin;
mod authorize;
mod data;
mod module;
mod recordings;
mod serve;

use std::path::{Path, PathBuf};

use csal_catalog::{Catalog, MASTER_KEY_ENV, MasterKey};

use crate::exit::{CliError, CliResult};
use crate::{Cli, Command};

pub async fn run(cli: Cli) -> CliResult {
    let show_progress = !(cli.quiet || cli.no_progress);
    let Cli { catalog, key_file, json, command, .. } = cli;
    if let Command::Providers = command {
        return module::providers(json);
    }
    let key = master_key(&catalog, key_file.as_deref())?;
    let cat = open_catalog(&catalog, key.key).await?;
    match command {
        Command::Providers => unreachable!("handled above"),
        Command::Completions { .. } | Command::Man => unreachable!("handled in main"),
        Command::Serve(args) => serve::serve(&cat, args, key.file.as_deref(), json).await,
        Command::Module(cmd) => module::run(&cat, cmd, json).await,
        Command::Admin(cmd) => admin::run(&cat, cmd, json).await,
        Command::Put { name, file, key_hint, content_type } => {
            data::put(&cat, &name, &file, key_hint, content_type, json, show_progress).await
        }
        Command::Get { name, object_id, output, range } => {
            data::get(&cat, &name, &object_id, &output, range, show_progress).await
        }
        Command::Ls { name, path, prefix } => data::ls(&cat, &name, &path, prefix, json).await,
        Command::Stat { name, object_id } => data::stat(&cat, &name, &object_id, json).await,
        Command::Rm { name, object_id } => data::rm(&cat, &name, &object_id, json).await,
        Command::Url { name, object_id, expires } => data::url(&cat, &name, &object_id, expires, json).await,
        Command::Cameras => recordings::cameras(&cat, json).await,
        Command::Segments { camera, from, to, limit } => {
            recordings::segments(&cat, &camera, from.as_deref(), to.as_deref(), limit, json).await
        }
        Command::Spool { spool_dir } => recordings::spool(&cat, spool_dir.as_deref(), json).await,
        Command::Policy(cmd) => recordings::policy(&cat, cmd, json).await,
        Command::Bwlimit { target, limit } => module::bwlimit(&cat, target, limit, json).await,
        Command::Import { from, dry_run } => module::import(&cat, &from, dry_run, json).await,
        Command::Hold(cmd) => recordings::hold(&cat, cmd, json).await,
        Command::Capacity { horizon_days } => recordings::capacity(&cat, horizon_days, json).await,
        Command::Fsck { camera, target, repair } => recordings::fsck(&cat, camera, target, repair, json).await,
        Command::Retention(cmd) => recordings::retention(&cat, cmd, json).await,
    }
}

/// The SQLite file behind a catalog URL, if it is one.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return None;
    }
    let p = url.strip_prefix("sqlite://").unwrap_or(url);
    let p = p.split('?').next().unwrap_or(p);
    Some(PathBuf::from(p))
}

/// Where the master key file lives by default: next to a SQLite catalog
/// (extension `.key`). A PostgreSQL catalog has none (docs/catalog.md):
/// every node must be given the same key.
pub fn default_key_file(url: &str) -> Option<PathBuf> {
    sqlite_path(url).map(|p| p.with_extension("key"))
}

/// The master key to open the catalog with, and its file if it has one.
struct KeySource {
    key: MasterKey,
    file: Option<PathBuf>,
}

fn master_key(url: &str, key_file: Option<&Path>) -> CliResult<KeySource> {
    if let Some(file) = key_file.map(Path::to_path_buf).or_else(|| default_key_file(url)) {
        return Ok(KeySource { key: MasterKey::FromEnvOrFile(file.clone()), file: Some(file) });
    }
    match std::env::var(MASTER_KEY_ENV) {
        Ok(v) if !v.trim().is_empty() => Ok(KeySource { key: MasterKey::Explicit(v.into()), file: None }),
        _ => Err(CliError::usage(format!(
            "a PostgreSQL catalog has no default master key file: every node must use the same key; set \
             {MASTER_KEY_ENV} (base64 of 32 bytes) or --key-file PATH (see docs/catalog.md)"
        ))),
    }
}

/// The catalog URL as it may be printed: any password masked.
pub fn shown_url(url: &str) -> String {
    if let Ok(loc) = csal_sql::DbLocation::parse(url, None, true) {
        return loc.display_url().to_owned();
    }
    // Unparseable: mask everything between the scheme and the last '@'.
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://{}{}", &url[..s], csal_core::secret::MASK, &url[at..]),
        _ => url.to_owned(),
    }
}

async fn open_catalog(url: &str, key: MasterKey) -> CliResult<Catalog> {
    Catalog::open(url, key).await.map_err(|e| {
        let mut err = CliError::from(e);
        err.message = format!("cannot open the catalog {}: {}", shown_url(url), err.message);
        err
    })
}
