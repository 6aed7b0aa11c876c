//! The commands. Each opens the catalog itself (no server needed).

mod admin;
mod authorize;
mod data;
mod module;
mod recordings;
mod serve;

use std::path::{Path, PathBuf};

use csal_catalog::{Catalog, MasterKey};

use crate::exit::{CliError, CliResult};
use crate::{Cli, Command};

pub async fn run(cli: Cli) -> CliResult {
    let Cli { catalog, key_file, json, command } = cli;
    if let Command::Providers = command {
        return module::providers(json);
    }
    let cat = open_catalog(&catalog, key_file.as_deref()).await?;
    match command {
        Command::Providers => unreachable!("handled above"),
        Command::Serve(args) => serve::serve(&cat, args, json).await,
        Command::Module(cmd) => module::run(&cat, cmd, json).await,
        Command::Admin(cmd) => admin::run(&cat, cmd, json).await,
        Command::Put { name, file, key_hint, content_type } => {
            data::put(&cat, &name, &file, key_hint, content_type, json).await
        }
        Command::Get { name, object_id, output, range } => data::get(&cat, &name, &object_id, &output, range).await,
        Command::Ls { name, path, prefix } => data::ls(&cat, &name, &path, prefix, json).await,
        Command::Stat { name, object_id } => data::stat(&cat, &name, &object_id, json).await,
        Command::Rm { name, object_id } => data::rm(&cat, &name, &object_id, json).await,
        Command::Url { name, object_id, expires } => data::url(&cat, &name, &object_id, expires, json).await,
        Command::Cameras => recordings::cameras(&cat, json).await,
        Command::Segments { camera, from, to, limit } => {
            recordings::segments(&cat, &camera, from.as_deref(), to.as_deref(), limit, json).await
        }
        Command::Spool { spool_dir } => recordings::spool(&cat, spool_dir.as_deref(), json).await,
        Command::Hold(cmd) => recordings::hold(&cat, cmd, json).await,
        Command::Retention(cmd) => recordings::retention(&cat, cmd, json).await,
    }
}

/// The SQLite file behind a catalog URL, if it is one.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return None;
    }
    let p = url.strip_prefix("sqlite://").unwrap_or(url);
    let p = p.split('?').next().unwrap_or(p);
    Some(PathBuf::from(p))
}

/// Where the master key file lives by default.
pub fn default_key_file(url: &str) -> PathBuf {
    match sqlite_path(url) {
        Some(p) => p.with_extension("key"),
        None => PathBuf::from("./csal.key"),
    }
}

async fn open_catalog(url: &str, key_file: Option<&Path>) -> CliResult<Catalog> {
    let key = key_file.map(Path::to_path_buf).unwrap_or_else(|| default_key_file(url));
    Catalog::open(url, MasterKey::FromEnvOrFile(key)).await.map_err(|e| {
        let mut err = CliError::from(e);
        err.message = format!("cannot open the catalog {url}: {}", err.message);
        err
    })
}
