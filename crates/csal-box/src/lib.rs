//! CSAL `box` provider: files in a Box folder over the Box API 2.0, with
//! OAuth refresh (rotating refresh tokens) or the Client Credentials Grant
//! through `csal-oauth`.
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/box.md")]

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

pub use config::BoxConfig;
pub use module::BoxModule;

csal_core::register_provider!(BoxConfig, BoxModule::build);
