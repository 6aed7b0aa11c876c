//! # csal-db
//!
//! The `db` provider: objects stored in SQLite or PostgreSQL as chunk rows
//! of 1 MiB, so writes stream (one transaction: a failed write leaves
//! nothing) and ranged reads fetch only the chunks they need.
//!
//! [`client`] and [`error`] are also used by `csal-catalog` (one way to open
//! a database and one error table for the whole project).

pub mod client;
pub mod config;
pub mod error;
mod list;
pub mod module;
mod write;

use std::sync::Arc;

pub use client::{Backend, DbLocation};
pub use config::{CHUNK_SIZE, DbConfig, FIELDS, PROVIDER_TYPE};
pub use error::map_sqlx;
pub use module::DbModule;

fn factory(
    ctx: &csal_core::InstanceContext,
    config: &serde_json::Value,
) -> csal_core::Result<Arc<dyn csal_core::StorageModule>> {
    let cfg = DbConfig::from_json(config)?;
    Ok(Arc::new(DbModule::new(&ctx.name, cfg)?))
}

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: PROVIDER_TYPE,
    display_name: "Database (SQLite / PostgreSQL)",
    category: csal_core::ProviderCategory::Database,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Objects as 1 MiB chunk rows in an SQLite file or a PostgreSQL database",
    fields: FIELDS,
    factory,
});
