//! CSAL `sftp` provider: files on an SSH server (OpenSSH and compatible)
//! through a pure-Rust SSH stack (russh + russh-sftp).
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/sftp.md")]

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
