//! CSAL `local_fs` provider: objects are files under a root directory.
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/local_fs.md")]

mod checksum;
mod config;
mod list;
mod module;
mod paths;
mod read;
mod write;

pub use config::LocalFsConfig;
pub use module::LocalFsModule;

csal_core::register_provider!(LocalFsConfig, module::build);
