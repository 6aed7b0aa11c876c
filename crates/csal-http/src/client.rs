//! One client builder for every HTTP provider.

use csal_core::tls::CaFile;
use csal_core::{Result, StorageError, Timeouts};

/// How a provider's `reqwest::Client` is built. The per-request limit
/// ([`Timeouts::request`]) is applied by the provider to the requests that
/// do not stream a body; streaming ones are bounded by the read timeout
/// between chunks instead.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Connect and read timeouts of the client (the request limit is applied per request).
    pub timeouts: Timeouts,
    /// `User-Agent` (`csal-gcs/0.1.0`).
    pub user_agent: &'static str,
    /// Accept self-signed / invalid certificates (self-hosted test servers).
    pub accept_invalid_certs: bool,
    /// Follow redirects; off by default, because most APIs use 3xx answers
    /// for their own purposes (a 308 "resume incomplete", a 302 to a
    /// pre-authorised download URL that must not get the bearer token).
    pub follow_redirects: bool,
    /// Proxy for every request; `None`: `HTTPS_PROXY` / `HTTP_PROXY`
    /// (and `NO_PROXY`) from the environment, if set.
    pub proxy: Option<String>,
    /// Extra trusted CA certificates (the provider's `ca_file`), added to
    /// the operating system's trust store (the policy of
    /// [`csal_core::tls`]: reqwest's platform verifier reads that store).
    pub ca_file: Option<CaFile>,
}

impl HttpOptions {
    /// Options with verified TLS, no redirects and the environment's proxy.
    pub fn new(user_agent: &'static str, timeouts: Timeouts) -> Self {
        HttpOptions {
            timeouts,
            user_agent,
            accept_invalid_certs: false,
            follow_redirects: false,
            proxy: None,
            ca_file: None,
        }
    }

    /// See [`HttpOptions::accept_invalid_certs`](#structfield.accept_invalid_certs).
    pub fn accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Trust `ca_file`'s certificates too (from the config's `trusted_ca()`).
    pub fn ca_file(mut self, ca_file: Option<CaFile>) -> Self {
        self.ca_file = ca_file;
        self
    }

    /// See [`HttpOptions::follow_redirects`](#structfield.follow_redirects).
    pub fn follow_redirects(mut self) -> Self {
        self.follow_redirects = true;
        self
    }

    /// The client; an `InvalidConfig` error when the proxy URL or TLS setup is refused.
    pub fn build(&self) -> Result<reqwest::Client> {
        let redirect = if self.follow_redirects {
            reqwest::redirect::Policy::limited(5)
        } else {
            reqwest::redirect::Policy::none()
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.timeouts.connect)
            .read_timeout(self.timeouts.read)
            .redirect(redirect)
            .user_agent(self.user_agent)
            .danger_accept_invalid_certs(self.accept_invalid_certs);
        if let Some(ca) = &self.ca_file {
            let mut extra = Vec::new();
            for der in ca.certificates() {
                extra.push(reqwest::Certificate::from_der(der).map_err(|e| {
                    StorageError::invalid_config(format!(
                        "field 'ca_file': a certificate is not usable ({})",
                        ca.path()
                    ))
                    .with_source(e)
                })?);
            }
            builder = builder.tls_certs_merge(extra);
        }
        let configured = self.proxy.clone().filter(|p| !p.is_empty());
        let from_env = || {
            ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        };
        if let Some(url) = configured.or_else(from_env) {
            let bad = || StorageError::invalid_config("the HTTP proxy URL is not valid");
            let no_proxy = std::env::var("NO_PROXY").or_else(|_| std::env::var("no_proxy")).unwrap_or_default();
            // Loopback servers (emulators, local gateways) are never proxied.
            let no_proxy = reqwest::NoProxy::from_string(&format!("localhost,127.0.0.1,::1,{no_proxy}"));
            builder = builder.proxy(reqwest::Proxy::all(&url).map_err(|_| bad())?.no_proxy(no_proxy));
        }
        builder
            .build()
            .map_err(|e| StorageError::invalid_config("cannot build the HTTP client (TLS setup)").with_source(e))
    }
}
