//! CSAL `gdrive` provider: files in Google Drive over the Drive v3 API,
//! with OAuth refresh through `csal-oauth`.
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/gdrive.md")]

mod auth;
mod client;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod list;
mod module;
mod oauth;
mod read;
mod write;

pub use config::GDriveConfig;
pub use module::GDriveModule;

csal_core::register_provider!(GDriveConfig, GDriveModule::build);
