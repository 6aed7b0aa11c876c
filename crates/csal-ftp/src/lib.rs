//! CSAL `ftp` provider: files on an FTP or explicit-FTPS server (suppaftp
//! with rustls), through a small pool of control connections.
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/ftp.md")]

mod client;
mod config;
mod error;
mod list;
mod module;
mod paths;
mod tls;
mod write;

pub use config::{FtpConfig, FtpSecurity};
pub use module::FtpModule;

csal_core::register_provider!(FtpConfig, module::build);
