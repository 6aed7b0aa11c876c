//! CSAL `swift` provider (OpenStack Swift object storage: TempAuth v1 or
//! Keystone v3) and its presets `rackspace` (Rackspace Cloud Files, identity
//! v2.0 API key) and `ovh_swift` (OVHcloud Object Storage, Keystone v3).
//!
//! Large objects are uploaded as Static Large Objects; reads, listings,
//! deletes, conditional creates and temp URLs use the plain Swift API over
//! reqwest.
#![warn(missing_docs)]
// The pages of the provider and its presets (docs/providers/, linked into docs/ so that
// `cargo package` ships them): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/swift.md")]
#![doc = include_str!("../docs/ovh_swift.md")]
#![doc = include_str!("../docs/rackspace.md")]

mod auth;
mod client;
mod config;
mod error;
mod list;
mod module;
mod read;
mod stale;
mod write;

pub use config::{OvhSwiftConfig, RackspaceConfig, SwiftConfig};
pub use module::SwiftModule;

csal_core::register_provider!(SwiftConfig, module::build_swift);

csal_core::register_provider!(RackspaceConfig, module::build_rackspace);

csal_core::register_provider!(OvhSwiftConfig, module::build_ovh);
