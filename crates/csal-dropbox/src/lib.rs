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

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "dropbox",
    display_name: "Dropbox",
    category: csal_core::ProviderCategory::FileSync,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Files in a Dropbox account (app folder or full access), OAuth 2 with refresh tokens.",
    fields: <DropboxConfig as csal_core::ConfigSpec>::FIELDS,
    factory: DropboxModule::build,
});
