//! CSAL `pcloud` provider: pCloud's HTTP JSON API (<https://docs.pcloud.com>).
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/pcloud.md")]

mod client;
mod config;
mod error;
mod list;
mod module;
mod write;

pub use config::PcloudConfig;
pub use module::PcloudModule;

csal_core::register_provider!(PcloudConfig, module::build);
