//! CSAL `dropbox` provider: files in a Dropbox (app folder or full access)
//! over the Dropbox HTTP API v2, with OAuth refresh through `csal-oauth`.
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/dropbox.md")]

mod client;
mod config;
mod error;
mod list;
mod module;
mod oauth;
mod read;
mod write;

pub use config::DropboxConfig;
pub use module::DropboxModule;

csal_core::register_provider!(DropboxConfig, DropboxModule::build);
