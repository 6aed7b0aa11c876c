//! CSAL `onedrive` provider: files in a OneDrive / SharePoint drive over
//! Microsoft Graph v1.0, with OAuth refresh through `csal-oauth`.
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/onedrive.md")]

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

pub use config::OneDriveConfig;
pub use module::OneDriveModule;

csal_core::register_provider!(OneDriveConfig, OneDriveModule::build);
