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

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "mega",
    display_name: "MEGA",
    category: csal_core::ProviderCategory::FileSync,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "MEGA cloud drive with client-side AES encryption; e-mail + password login.",
    fields: <MegaConfig as csal_core::ConfigSpec>::FIELDS,
    factory: module::build,
});
