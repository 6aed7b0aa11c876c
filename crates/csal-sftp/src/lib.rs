//! CSAL `sftp` provider: files on an SSH server (OpenSSH and compatible)
//! through a pure-Rust SSH stack (russh + russh-sftp).

mod client;
mod config;
mod error;
mod list;
mod module;
mod paths;
mod write;

#[doc(hidden)]
pub use client::rename_probe;
pub use config::SftpConfig;
pub use module::SftpModule;

csal_core::register_provider!(SftpConfig, module::build);
