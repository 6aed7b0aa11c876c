//! CSAL `local_fs` provider: objects are files under a root directory.

mod checksum;
mod config;
mod list;
mod module;
mod paths;
mod write;

pub use config::LocalFsConfig;
pub use module::LocalFsModule;

csal_core::register_provider!(LocalFsConfig, module::build);
