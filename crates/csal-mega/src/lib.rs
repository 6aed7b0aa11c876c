//! CSAL `mega` provider: MEGA's JSON command API (`cs`) with client-side encryption.
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/mega.md")]

mod client;
mod config;
mod crypto;
mod error;
mod list;
mod module;
mod read;
mod write;

pub use config::MegaConfig;
pub use module::MegaModule;

csal_core::register_provider!(MegaConfig, module::build);
