//! CSAL `mega` provider: MEGA's JSON command API (`cs`) with client-side encryption.

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
