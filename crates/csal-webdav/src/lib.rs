//! CSAL `webdav` provider (any RFC 4918 server: Apache mod_dav, nginx, wsgidav,
//! rclone serve, ...) and its `nextcloud` preset (Nextcloud / ownCloud's
//! `/remote.php/dav/files/<user>/`, with chunked upload v2 for large objects).
//!
//! Built on `reqwest_dav` for authentication (Basic and Digest) and request
//! building; bodies are streamed with `reqwest::Body::wrap_stream`.
#![warn(missing_docs)]
// The pages of the provider and its presets (docs/providers/, linked into docs/ so that
// `cargo package` ships them): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/webdav.md")]
#![doc = include_str!("../docs/nextcloud.md")]

mod client;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod list;
mod module;
mod read;
mod write;

pub use config::{DavAuth, NextcloudConfig, WebDavConfig};
pub use module::WebDavModule;

csal_core::register_provider!(WebDavConfig, module::build_webdav);

csal_core::register_provider!(NextcloudConfig, module::build_nextcloud);
