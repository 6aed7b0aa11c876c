//! # csal-db
//!
//! The `db` provider: objects stored in SQLite or PostgreSQL as chunk rows
//! of 1 MiB, so writes stream (one transaction: a failed write leaves
//! nothing) and ranged reads fetch only the chunks they need.
//!
//! Opening the database and mapping its errors is `csal-sql`'s, shared with
//! the catalog.
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/db.md")]

pub mod config;
mod list;
pub mod module;
mod tables;
mod write;

use std::sync::Arc;

pub use config::{CHUNK_SIZE, DbConfig, PROVIDER_TYPE};
pub use module::DbModule;

fn factory(
    ctx: &csal_core::InstanceContext,
    config: &serde_json::Value,
) -> csal_core::Result<Arc<dyn csal_core::StorageModule>> {
    let cfg = DbConfig::from_json(config)?;
    Ok(Arc::new(DbModule::new(&ctx.name, cfg)?))
}

csal_core::register_provider!(DbConfig, factory);
