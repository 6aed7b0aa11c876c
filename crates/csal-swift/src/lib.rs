//! CSAL `swift` provider (OpenStack Swift object storage: TempAuth v1 or
//! Keystone v3) and its presets `rackspace` (Rackspace Cloud Files, identity
//! v2.0 API key) and `ovh_swift` (OVHcloud Object Storage, Keystone v3).
//!
//! Large objects are uploaded as Static Large Objects; reads, listings,
//! deletes, conditional creates and temp URLs use the plain Swift API over
//! reqwest.

mod auth;
mod client;
mod config;
mod error;
mod list;
mod module;
mod read;
mod write;

pub use config::{OvhSwiftConfig, RackspaceConfig, SwiftConfig};
pub use module::SwiftModule;

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "swift",
    display_name: "OpenStack Swift",
    category: csal_core::ProviderCategory::ObjectStorage,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "OpenStack Swift object storage (Keystone v3 or TempAuth v1); large objects as SLOs.",
    fields: <SwiftConfig as csal_core::ConfigSpec>::FIELDS,
    factory: module::build_swift,
});

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "rackspace",
    display_name: "Rackspace Cloud Files",
    category: csal_core::ProviderCategory::ObjectStorage,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Rackspace Cloud Files (Swift) with a username and API key.",
    fields: <RackspaceConfig as csal_core::ConfigSpec>::FIELDS,
    factory: module::build_rackspace,
});

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "ovh_swift",
    display_name: "OVHcloud Object Storage (Swift)",
    category: csal_core::ProviderCategory::ObjectStorage,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "OVHcloud Public Cloud Object Storage over the Swift API (Keystone v3 at auth.cloud.ovh.net).",
    fields: <OvhSwiftConfig as csal_core::ConfigSpec>::FIELDS,
    factory: module::build_ovh,
});
