//! CSAL `pcloud` provider: pCloud's HTTP JSON API (<https://docs.pcloud.com>).

mod client;
mod config;
mod error;
mod list;
mod module;
mod write;

pub use config::PcloudConfig;
pub use module::PcloudModule;

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "pcloud",
    display_name: "pCloud",
    category: csal_core::ProviderCategory::FileSync,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "pCloud (US or EU region) through its HTTP JSON API; OAuth token or username/password.",
    fields: <PcloudConfig as csal_core::ConfigSpec>::FIELDS,
    factory: module::build,
});
