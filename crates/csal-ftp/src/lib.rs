//! CSAL `ftp` provider: files on an FTP or explicit-FTPS server (suppaftp
//! with rustls), through a small pool of control connections.

mod client;
mod config;
mod error;
mod list;
mod module;
mod tls;
mod write;

pub use config::{FtpConfig, FtpSecurity};
pub use module::FtpModule;

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "ftp",
    display_name: "FTP / FTPS",
    category: csal_core::ProviderCategory::NetworkProtocol,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Files on an FTP server, plain or with explicit TLS (FTPS), passive or active mode.",
    fields: config::FIELDS,
    factory: module::build,
});
