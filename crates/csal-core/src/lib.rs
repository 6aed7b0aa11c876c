//! # csal-core
//!
//! The contract and plumbing of CSAL, free of any SDK, HTTP client or
//! database:
//!
//! - [`StorageModule`]: the async trait every provider implements;
//! - [`StorageError`]: one error type, classified Auth / Transient / Permanent;
//! - [`ByteStream`] and [`ByteRange`]: streaming bodies and ranged reads;
//! - [`registry`]: providers register with [`register_provider!`], apps link
//!   them with [`link_providers!`];
//! - [`StorageRouter`]: instances by id and name, reloadable, with the
//!   [`layers`] (timeout, retry, metrics through the `metrics` facade,
//!   tracing, secret scrubbing) applied once.
//!
//! Write an object and read it back through the router (the `memory`
//! provider here; any provider crate the application links works the same):
//!
//! ```
//! use csal_core::{ByteStream, InstanceDefinition, StorageRouter, WriteMeta};
//!
//! csal_core::link_providers!(csal_memory);
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> csal_core::Result<()> {
//! let router = StorageRouter::from_definitions(&[InstanceDefinition::new(
//!     "scratch",
//!     "memory",
//!     serde_json::json!({}),
//! )]);
//! let body = ByteStream::from_bytes("first segment");
//! let receipt = router.write("scratch", body, WriteMeta::new("camera5/0001.ts")).await?;
//! // The provider chose the id; the router filled in the CRC32C it computed while streaming.
//! assert!(receipt.object_id.starts_with("camera5/"));
//! assert!(receipt.checksum.is_some());
//!
//! let back = router.read("scratch", &receipt.object_id, None).await?.collect_limited(1 << 20).await?;
//! assert_eq!(&back[..], b"first segment");
//!
//! // Bad input is an error of the right kind, never a panic.
//! let err = router.read("scratch", "../etc/passwd", None).await.unwrap_err();
//! assert_eq!(err.kind(), csal_core::ErrorKind::InvalidInput);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod crc;
pub mod error;
pub mod ids;
pub mod layers;
pub mod module;
pub mod range;
pub mod ranged;
pub mod registry;
pub mod router;
pub mod secret;
pub mod spec;
pub mod stream;
pub mod time_format;
#[cfg(feature = "tls")]
pub mod tls;
pub mod tree_list;
pub mod units;

// The code `#[config]` generates names `::csal_core`, also inside this crate's tests.
extern crate self as csal_core;

pub use async_trait::async_trait;
pub use bytes::Bytes;
/// Declare a provider's config struct and its field spec at once; see [`spec`].
pub use csal_core_macros::config;
#[doc(hidden)]
pub use inventory;

/// What `#[csal_core::config]` expands to refers to; not an API.
#[doc(hidden)]
pub mod __private {
    pub use serde;
}

pub use crc::{crc32c, crc32c_append};
pub use error::{ErrorClass, ErrorKind, Operation, Result, StorageError};
pub use ids::{check_id_prefix, check_object_id, object_id_from_hint, sanitize_hint};
pub use layers::{LayerConfig, LayeredModule, RetryPolicy, TimeoutPolicy};
pub use module::{
    Capabilities, Checksum, HealthReport, HealthStatus, ListPage, ListRequest, ObjectMeta, STALE_TEMP_AGE,
    StaleUploads, StorageModule, WriteMeta, WriteReceipt, is_stale_temp,
};
pub use range::ByteRange;
pub use ranged::read_in_ranges;
pub use registry::{
    ConfigSink, ConfigUpdates, InstanceContext, ProviderRegistration, find_provider, registered_providers,
    registry_conflicts,
};
pub use router::{InstanceDefinition, InstanceInfo, InstanceStatus, ReloadSummary, StorageRouter};
pub use secret::{ExposeSecret, SecretString, mask_config};
pub use spec::{ConfigField, ConfigSpec, FieldKind, ProviderCategory, Timeouts, parse_config};
pub use stream::{BodyPart, ByteStream, Crc32cTally, SentCrc32c, send_parts};
pub use tree_list::{FolderSelection, FolderTree, ListCursors, list_tree};
pub use units::human_bytes;
