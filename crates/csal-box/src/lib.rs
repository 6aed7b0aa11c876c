//! CSAL `box` provider: files in a Box folder over the Box API 2.0, with
//! OAuth refresh (rotating refresh tokens) or the Client Credentials Grant
//! through `csal-oauth`.

mod client;
mod config;
mod error;
mod list;
mod module;
mod oauth;
mod read;
mod write;

pub use config::BoxConfig;
pub use module::BoxModule;

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "box",
    display_name: "Box",
    category: csal_core::ProviderCategory::FileSync,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Files in a Box folder: OAuth 2 (rotating refresh tokens) or Client Credentials Grant, chunked upload sessions with SHA-1 digests.",
    fields: <BoxConfig as csal_core::ConfigSpec>::FIELDS,
    factory: BoxModule::build,
});
