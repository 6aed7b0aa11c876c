//! Loopback fake servers of cloud storage APIs that have no emulator (and a
//! WebDAV server with a quota a test sets, which the emulators lack), and
//! of the credential endpoints cloud hosts provide (AWS instance metadata
//! and container credentials; Entra ID tokens and Azure managed identity),
//! for tests.
//!
//! Each module implements the part of one service's public HTTP API that
//! the CSAL provider uses, with the documented status codes, error bodies,
//! pagination and upload-session rules, plus knobs to inject token expiry
//! and rate limiting. Servers listen on `127.0.0.1:0` inside the test's own
//! tokio runtime and stop when their handle is dropped.
#![warn(missing_docs)]

mod authcode;
pub mod aws_metadata;
pub mod boxapi;
pub mod dropbox;
pub mod entra;
pub mod gdrive;
pub mod mega;
pub mod onedrive;
pub mod pcloud;
pub mod webdav;

/// Serve `app` on 127.0.0.1 (a free port) in the caller's runtime: the
/// address and the task, which the fake aborts when dropped.
pub(crate) async fn serve_loopback(app: axum::Router) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}
