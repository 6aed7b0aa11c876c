//! CSAL `pcloud` provider: pCloud's HTTP JSON API (<https://docs.pcloud.com>).

mod client;
mod config;
mod error;
mod list;
mod module;
mod write;

pub use config::PcloudConfig;
pub use module::PcloudModule;

csal_core::register_provider!(PcloudConfig, module::build);
