//! CSAL `gcs` provider: Google Cloud Storage over its JSON API.
//!
//! The official `google-cloud-storage` crate needs gRPC for listing,
//! deleting and stat, which no local emulator serves, so this crate speaks
//! the JSON API directly with `reqwest`, and gets OAuth2 tokens with
//! `yup-oauth2` (service-account keys, application default credentials).
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/gcs.md")]

mod auth;
mod client;
mod config;
mod error;
mod list;
mod module;
mod presign;
mod read;
mod write;

pub use config::{DEFAULT_CHUNK_SIZE, GcsConfig};
pub use module::GcsModule;

csal_core::register_provider!(GcsConfig, module::build);
