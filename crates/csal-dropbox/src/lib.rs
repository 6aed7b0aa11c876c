//! CSAL `dropbox` provider: files in a Dropbox (app folder or full access)
//! over the Dropbox HTTP API v2, with OAuth refresh through `csal-oauth`.

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
