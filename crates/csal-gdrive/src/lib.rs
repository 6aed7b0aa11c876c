//! CSAL `gdrive` provider: files in Google Drive over the Drive v3 API,
//! with OAuth refresh through `csal-oauth`.

mod auth;
mod client;
mod config;
mod error;
mod list;
mod module;
mod oauth;
mod read;
mod write;

pub use config::GDriveConfig;
pub use module::GDriveModule;

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "gdrive",
    display_name: "Google Drive",
    category: csal_core::ProviderCategory::FileSync,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Files in Google Drive (My Drive or a shared drive); OAuth 2 user credentials or a service-account key.",
    fields: <GDriveConfig as csal_core::ConfigSpec>::FIELDS,
    factory: GDriveModule::build,
});
