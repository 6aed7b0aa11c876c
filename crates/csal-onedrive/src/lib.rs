//! CSAL `onedrive` provider: files in a OneDrive / SharePoint drive over
//! Microsoft Graph v1.0, with OAuth refresh through `csal-oauth`.

mod client;
mod config;
mod error;
mod list;
mod module;
mod oauth;
mod read;
mod write;

pub use config::OneDriveConfig;
pub use module::OneDriveModule;

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "onedrive",
    display_name: "OneDrive / SharePoint (Microsoft Graph)",
    category: csal_core::ProviderCategory::FileSync,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Files in a OneDrive (personal or business) or SharePoint drive via Microsoft Graph, OAuth 2 refresh tokens.",
    fields: <OneDriveConfig as csal_core::ConfigSpec>::FIELDS,
    factory: OneDriveModule::build,
});
