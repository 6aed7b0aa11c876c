//! CSAL `ftp` provider: files on an FTP or explicit-FTPS server (suppaftp
//! with rustls), through a small pool of control connections.

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
