//! CSAL `local_fs` provider: objects are files under a root directory.

mod config;
mod list;
mod module;
mod paths;
mod write;

pub use config::LocalFsConfig;
pub use module::LocalFsModule;

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "local_fs",
    display_name: "Local filesystem",
    category: csal_core::ProviderCategory::Local,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Files under a directory on this machine (local disk, NAS mount).",
    fields: config::FIELDS,
    factory: module::build,
});
