//! Loopback fake servers of cloud storage APIs that have no emulator (and a
//! WebDAV server with a quota a test sets, which the emulators lack), for tests.
//!
//! Each module implements the part of one service's public HTTP API that
//! the CSAL provider uses, with the documented status codes, error bodies,
//! pagination and upload-session rules, plus knobs to inject token expiry
//! and rate limiting. Servers listen on `127.0.0.1:0` inside the test's own
//! tokio runtime and stop when their handle is dropped.
#![warn(missing_docs)]

mod authcode;
pub mod boxapi;
pub mod dropbox;
pub mod gdrive;
pub mod mega;
pub mod onedrive;
pub mod pcloud;
pub mod webdav;
