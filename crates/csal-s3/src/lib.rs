//! # csal-s3
//!
//! The CSAL `s3` provider on aws-sdk-s3, and the S3-compatible presets
//! (`r2`, `b2`, `wasabi`, `do_spaces`, `linode`, `ibm_cos`, `oracle`,
//! `ovh`, `scaleway`, `s3_compatible`), each a provider_type of its own.
//! See `docs/providers/s3.md`.
#![warn(missing_docs)]
// The pages of the provider and its presets (docs/providers/, linked into docs/ so that
// `cargo package` ships them): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/s3.md")]
#![doc = include_str!("../docs/r2.md")]
#![doc = include_str!("../docs/b2.md")]
#![doc = include_str!("../docs/wasabi.md")]
#![doc = include_str!("../docs/do_spaces.md")]
#![doc = include_str!("../docs/linode.md")]
#![doc = include_str!("../docs/ibm_cos.md")]
#![doc = include_str!("../docs/oracle.md")]
#![doc = include_str!("../docs/ovh.md")]
#![doc = include_str!("../docs/scaleway.md")]
#![doc = include_str!("../docs/s3_compatible.md")]

#[cfg(feature = "aws-config")]
mod chain;
mod client;
mod config;
mod copy;
mod error;
mod list;
mod lock;
mod module;
pub mod presets;
mod stale;
mod write;

pub use client::READ_RANGE;
pub use config::{ChecksumAlgorithm, ConditionalCreate, CredentialSource, S3Config};
pub use module::S3Module;

csal_core::register_provider!(S3Config, module::build);
