//! CSAL `sftp` provider: files on an SSH server (OpenSSH and compatible)
//! through a pure-Rust SSH stack (russh + russh-sftp).

mod client;
mod config;
mod error;
mod list;
mod module;
mod write;

#[doc(hidden)]
pub use client::rename_probe;
pub use config::SftpConfig;
pub use module::SftpModule;

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "sftp",
    display_name: "SFTP (SSH)",
    category: csal_core::ProviderCategory::NetworkProtocol,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Files on an SSH server over SFTP, with host-key pinning, password or key login.",
    fields: config::FIELDS,
    factory: module::build,
});
