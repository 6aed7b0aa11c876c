//! # csal-admin
//!
//! The CSAL Module Manager: a server-rendered admin UI (axum + maud, no
//! JavaScript build step), a JSON API mirroring it, Prometheus `/metrics`
//! and `/healthz`, over a [`csal_catalog::Catalog`].
//!
//! ```no_run
//! # async fn run(catalog: csal_catalog::Catalog) -> csal_core::Result<()> {
//! let state = csal_admin::AdminState::new(catalog);
//! csal_admin::serve(state, "127.0.0.1:8080".parse().unwrap()).await?;
//! # Ok(()) }
//! ```
//!
//! Every route except `/login`, `/healthz` and `/oauth/callback` (see
//! [`oauth`]) needs a logged-in session or an
//! API token whose scope covers it (see [`auth`]). The recording API of
//! [`v1`] is served when the state carries a [`csal_spool::Gateway`].
#![warn(missing_docs)]

pub mod api;
pub mod auth;
mod charts;
pub mod forms;
pub mod metrics;
pub mod module_stats;
pub mod oauth;
pub mod pages;
pub mod recordings;
mod status;
pub mod throttle;
pub mod v1;
mod views;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::routing::{get, post};
use csal_catalog::Catalog;
use csal_core::{Result, StorageError};

pub use status::{StatusView, status_of};

/// Shared state of the admin server.
#[derive(Clone)]
pub struct AdminState {
    /// The catalog the pages and the API read and change.
    pub catalog: Catalog,
    /// Browser sessions (in the catalog, so every node shares them).
    pub sessions: auth::Sessions,
    /// Base URL browsers reach this server at (`https://csal.example.com`),
    /// for OAuth redirect URIs; `None`: `http://{Host header}`.
    pub public_url: Option<String>,
    /// OAuth authorizations started with the Authorize button.
    pub oauth: oauth::OAuthFlows,
    /// Per-client lockout after repeated wrong admin passwords, and the
    /// server-wide cap on concurrent password checks.
    pub login_throttle: throttle::LoginThrottle,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for the
    /// login lockout); empty: the TCP peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The recording gateway (`/v1/`), when this server runs one.
    pub gateway: Option<csal_spool::Gateway>,
    /// The latest capacity forecast (refreshed after each round of health
    /// checks; shown on the pages and in `/metrics`).
    pub capacity: csal_spool::capacity::CapacityBoard,
    /// Operation metrics of the modules (the process's `metrics` recorder).
    pub metrics: module_stats::AdminMetrics,
}

impl AdminState {
    /// State over `catalog` with the defaults: no public URL, no gateway, no trusted proxy.
    pub fn new(catalog: Catalog) -> Self {
        AdminState {
            sessions: auth::Sessions::new(catalog.clone()),
            catalog,
            public_url: None,
            oauth: Default::default(),
            login_throttle: Default::default(),
            trusted_proxies: Vec::new(),
            gateway: None,
            capacity: Default::default(),
            metrics: module_stats::AdminMetrics::global(),
        }
    }

    /// Serve the recording API (`/v1/`) through `gateway`.
    pub fn with_gateway(mut self, gateway: csal_spool::Gateway) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Share the capacity forecast the health loop refreshes.
    pub fn with_capacity(mut self, capacity: csal_spool::capacity::CapacityBoard) -> Self {
        self.capacity = capacity;
        self
    }

    /// Believe `X-Forwarded-For` from these reverse proxies.
    pub fn with_trusted_proxies(mut self, proxies: Vec<std::net::IpAddr>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Whether browsers reach the admin over https (cookies get `Secure`).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.as_deref().is_some_and(|u| u.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://")))
    }
    /// Set the public base URL (OAuth redirect URIs are built from it).
    pub fn with_public_url(mut self, url: Option<String>) -> Self {
        self.public_url = url.map(|u| u.trim_end_matches('/').to_owned()).filter(|u| !u.is_empty());
        self
    }
}

/// The whole admin application.
pub fn app(state: AdminState) -> Router {
    let protected = Router::new()
        .route("/", get(pages::index))
        .route("/modules", get(pages::modules))
        .route("/modules/new", get(pages::new_module).post(pages::create_module))
        .route("/modules/{name}", get(pages::module_detail))
        .route("/modules/{name}/edit", get(pages::edit_module).post(pages::update_module))
        .route("/modules/{name}/test", post(pages::test_module))
        .route("/modules/{name}/authorize", post(oauth::start))
        .route("/modules/{name}/enable", post(pages::enable_module))
        .route("/modules/{name}/disable", post(pages::disable_module))
        .route("/modules/{name}/canary/{switch}", post(pages::set_canary))
        .route("/modules/{name}/delete", post(pages::delete_module))
        .route("/policies", get(pages::policies).post(pages::save_policy))
        .route("/policies/{camera}/delete", post(pages::delete_policy))
        .route("/recordings", get(recordings::index))
        .route("/recordings/{camera}", get(recordings::camera))
        .route("/recordings/{camera}/holds", post(recordings::add_hold))
        .route("/holds/{id}/delete", post(recordings::remove_hold))
        .route("/logout", post(pages::logout))
        .route("/metrics", get(metrics::prometheus))
        .merge(api::routes())
        .merge(v1::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_auth));
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/healthz", get(|| async { "ok" }))
        .route(views::CSS_PATH, get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], views::CSS) }))
        .route(
            views::JS_PATH,
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], views::JS) }),
        )
        // Authenticated by its single-use state, not the (SameSite=Strict)
        // session cookie a browser coming back from the provider omits.
        .route("/oauth/callback", get(oauth::callback))
        .merge(protected)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    use axum::http::HeaderValue;
    let h = resp.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    // On every response, not only HTML: harmless elsewhere, and no page can
    // be served without it.
    h.insert("content-security-policy", HeaderValue::from_static(views::CONTENT_SECURITY_POLICY));
    resp
}

/// Health-check every ready instance every `interval` (the first round
/// after one interval: run [`check_all`] first), so the Module Manager
/// shows a fresh status. Runs until the process ends.
pub fn spawn_health_checks(
    catalog: Catalog,
    interval: Duration,
    capacity: csal_spool::capacity::CapacityBoard,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            check_all(&catalog, &capacity).await;
        }
    })
}

/// One health round of every ready instance (with write canaries, see
/// [`Catalog::check_health_now`]); then the capacity forecast, which
/// amends the reports of targets filling up.
pub async fn check_all(catalog: &Catalog, capacity: &csal_spool::capacity::CapacityBoard) {
    catalog.check_health_now().await;
    if let Err(e) = capacity.refresh(catalog).await {
        tracing::warn!(error = %e, "capacity forecast failed");
    }
}

/// Bind `addr` and serve until Ctrl-C / SIGTERM.
pub async fn serve(state: AdminState, addr: SocketAddr) -> Result<()> {
    let listener = bind(addr).await?;
    serve_on(state, listener).await
}

/// Bind the admin listener (clear error when the port is taken).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        StorageError::from(e)
            .with_instance(format!("admin listener {addr}"))
            .with_operation(csal_core::Operation::Construct)
    })
}

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections get to finish after Ctrl-C / SIGTERM.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Serve on an already bound listener until Ctrl-C / SIGTERM.
///
/// HTTP/1 connections allow half-closes: ffmpeg's HLS muxer sends a
/// segment and closes its side at once, without reading the answer, and
/// the request must still be carried out (see [`v1`]). The peer address
/// reaches handlers as [`axum::extract::ConnectInfo`].
pub async fn serve_on(state: AdminState, listener: tokio::net::TcpListener) -> Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let router = state.catalog.router();
    let metrics = state.metrics.clone();
    let upkeep = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            metrics.run_upkeep();
        }
    });
    let app = app(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut signal = std::pin::pin!(shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut signal => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = tower::ServiceExt::map_request(app.clone(), move |mut req: axum::extract::Request<_>| {
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            req
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    upkeep.abort();
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {} s; closing them", DRAIN_TIMEOUT.as_secs());
    }
    for e in router.shutdown_all().await {
        tracing::warn!(error = %e, "instance shutdown failed");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
