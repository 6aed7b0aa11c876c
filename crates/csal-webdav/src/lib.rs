//! CSAL `webdav` provider (any RFC 4918 server: Apache mod_dav, nginx, wsgidav,
//! rclone serve, ...) and its `nextcloud` preset (Nextcloud / ownCloud's
//! `/remote.php/dav/files/<user>/`, with chunked upload v2 for large objects).
//!
//! Built on `reqwest_dav` for authentication (Basic and Digest) and request
//! building; bodies are streamed with `reqwest::Body::wrap_stream`.

mod client;
mod config;
mod error;
mod list;
mod module;
mod read;
mod write;

pub use config::{DavAuth, NextcloudConfig, WebDavConfig};
pub use module::WebDavModule;

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "webdav",
    display_name: "WebDAV",
    category: csal_core::ProviderCategory::NetworkProtocol,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Any WebDAV server (Apache mod_dav, nginx, wsgidav, NAS boxes); Basic or Digest auth.",
    fields: <WebDavConfig as csal_core::ConfigSpec>::FIELDS,
    factory: module::build_webdav,
});

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "nextcloud",
    display_name: "Nextcloud",
    category: csal_core::ProviderCategory::FileSync,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Nextcloud (or ownCloud) files over WebDAV with an app password; chunked upload for large objects.",
    fields: <NextcloudConfig as csal_core::ConfigSpec>::FIELDS,
    factory: module::build_nextcloud,
});
