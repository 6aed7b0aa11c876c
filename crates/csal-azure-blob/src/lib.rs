//! CSAL `azure_blob` provider: Azure Blob Storage over its REST API.
//!
//! The official `azure_storage_blob` crate has no Shared Key signing (and
//! refuses tokens over `http://`), which rules out account keys, connection
//! strings and Azurite. This crate speaks Blob REST with `reqwest` and signs
//! requests itself (Shared Key, HMAC-SHA256) or appends a SAS token, or
//! sends Entra ID bearer tokens (client secret or managed identity, through
//! csal-oauth's `TokenManager`).
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/azure_blob.md")]

mod client;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod list;
mod module;
mod read;
mod sign;
mod write;

pub use config::{AzureAuth, AzureBlobConfig};
pub use module::AzureBlobModule;

csal_core::register_provider!(AzureBlobConfig, module::build);
