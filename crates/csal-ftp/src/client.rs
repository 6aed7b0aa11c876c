//! Control connections: connect (+ AUTH TLS), login, binary mode, and a
//! bounded pool so concurrent operations each get their own connection.
//! A connection that saw a connection-level error is dropped, never reused;
//! the next checkout opens a fresh one (that is the reconnect).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use csal_core::{ExposeSecret, Result, StorageError};
use suppaftp::tokio::ImplAsyncFtpStream;
use suppaftp::tokio_rustls::TlsConnector;
use suppaftp::tokio_rustls::rustls::{self, ClientConfig};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Mode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{FtpConfig, FtpSecurity};
use crate::error::map_ftp;
use crate::tls::{FlushingTls, FlushingTlsConnector};

pub(crate) type Ftp = ImplAsyncFtpStream<FlushingTls>;

/// Idle connections older than this are checked with NOOP before reuse.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(15);

pub(crate) struct FtpPool {
    config: FtpConfig,
    tls: Option<Arc<ClientConfig>>,
    idle: Mutex<Vec<(Ftp, Instant)>>,
    permits: Arc<Semaphore>,
    /// Absolute base folder, learned from PWD on the first login.
    root: tokio::sync::OnceCell<String>,
    /// Whether MLSD is worth trying (cleared after the server refused it).
    pub(crate) mlsd: std::sync::atomic::AtomicBool,
}

/// A checked-out connection; goes back to the pool on drop unless poisoned.
pub(crate) struct Conn {
    ftp: Option<Ftp>,
    pool: Arc<FtpPool>,
    reusable: bool,
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    pub(crate) fn ftp(&mut self) -> &mut Ftp {
        self.ftp.as_mut().expect("connection present until drop")
    }

    /// Never put this connection back (its state is unknown).
    pub(crate) fn poison(&mut self) {
        self.reusable = false;
    }

    /// Poison on connection-level errors and pass the result on.
    pub(crate) fn check<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r
            && e.is_transient()
        {
            self.poison();
        }
        r
    }

    pub(crate) fn limit(&self) -> Duration {
        self.pool.config.operation_timeout()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(ftp) = self.ftp.take()
            && self.reusable
        {
            self.pool.idle.lock().expect("lock").push((ftp, Instant::now()));
        }
    }
}

/// Run one FTP call with a deadline, mapping its error.
pub(crate) async fn timed<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = std::result::Result<T, FtpError>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(|e| map_ftp(e, what)),
        Err(_) => Err(StorageError::timeout(format!("{what}: no reply within {} s", limit.as_secs()))),
    }
}

impl FtpPool {
    pub(crate) fn new(config: FtpConfig) -> Result<Arc<Self>> {
        config.validate()?;
        let tls = match config.security {
            FtpSecurity::None => None,
            FtpSecurity::ExplicitTls => {
                Some(Arc::new(tls_config(config.accept_invalid_certs, config.trusted_ca()?.as_ref())?))
            }
        };
        let permits = Arc::new(Semaphore::new(config.max_connections));
        Ok(Arc::new(FtpPool {
            config,
            tls,
            idle: Mutex::new(Vec::new()),
            permits,
            root: Default::default(),
            mlsd: true.into(),
        }))
    }

    pub(crate) fn config(&self) -> &FtpConfig {
        &self.config
    }

    /// The absolute base folder (connects once to learn the login folder).
    pub(crate) async fn root(self: &Arc<Self>) -> Result<String> {
        let pool = self.clone();
        self.root
            .get_or_try_init(|| async move {
                let base = pool.config.base_dir.trim().trim_end_matches('/').to_owned();
                if base.starts_with('/') {
                    return Ok(base);
                }
                let mut conn = pool.checkout().await?;
                let limit = conn.limit();
                let pwd = timed(limit, "PWD", conn.ftp().pwd()).await;
                let pwd = conn.check(pwd)?;
                let pwd = pwd.trim_end_matches('/');
                Ok(match base.trim_start_matches("./") {
                    "" | "." => {
                        if pwd.is_empty() {
                            "/".to_owned()
                        } else {
                            pwd.to_owned()
                        }
                    }
                    rel => format!("{pwd}/{rel}"),
                })
            })
            .await
            .cloned()
    }

    /// A connection of our own: an idle one (checked if it idled long) or a new one.
    pub(crate) async fn checkout(self: &Arc<Self>) -> Result<Conn> {
        let limit = self.config.operation_timeout() + self.config.connect_timeout();
        let permit = match tokio::time::timeout(limit, self.permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(StorageError::permanent("the FTP connection pool is closed")),
            Err(_) => {
                return Err(StorageError::timeout(format!(
                    "no free FTP connection within {} s (max_connections {})",
                    limit.as_secs(),
                    self.config.max_connections
                )));
            }
        };
        loop {
            let idle = self.idle.lock().expect("lock").pop();
            let Some((mut ftp, since)) = idle else { break };
            if since.elapsed() < CHECK_AFTER_IDLE
                || timed(self.config.operation_timeout(), "NOOP", ftp.noop()).await.is_ok()
            {
                return Ok(Conn { ftp: Some(ftp), pool: self.clone(), reusable: true, _permit: permit });
            }
        }
        let ftp = self.connect().await?;
        Ok(Conn { ftp: Some(ftp), pool: self.clone(), reusable: true, _permit: permit })
    }

    async fn connect(&self) -> Result<Ftp> {
        let limit = self.config.connect_timeout();
        match tokio::time::timeout(limit, self.connect_inner(limit)).await {
            Ok(r) => r,
            Err(_) => Err(StorageError::timeout(format!(
                "connecting to {}:{} took longer than {} s",
                self.config.host,
                self.config.port,
                limit.as_secs()
            ))),
        }
    }

    async fn connect_inner(&self, limit: Duration) -> Result<Ftp> {
        let cfg = &self.config;
        let addr: SocketAddr = tokio::net::lookup_host((cfg.host.as_str(), cfg.port))
            .await
            .map_err(|e| crate::error::io_error(e, "resolving the host"))?
            .next()
            .ok_or_else(|| StorageError::invalid_config(format!("host '{}' has no address", cfg.host)))?;
        let where_ = format!("connecting to {}:{}", cfg.host, cfg.port);
        let mut ftp = timed(limit, &where_, Ftp::connect_timeout(addr, limit)).await?;
        if let Some(tls) = &self.tls {
            let connector = FlushingTlsConnector(TlsConnector::from(tls.clone()));
            ftp = timed(limit, "starting TLS (AUTH TLS)", ftp.into_secure(connector, &cfg.host)).await?;
        }
        if cfg.active_mode {
            ftp = ftp.active_mode(self.config.operation_timeout());
        } else {
            ftp.set_mode(Mode::Passive);
        }
        let password = cfg.password.as_ref().map(|p| p.expose_secret().to_owned()).unwrap_or_default();
        timed(limit, "login", ftp.login(cfg.username.as_str(), password.as_str())).await.map_err(|e| {
            if e.kind() == csal_core::ErrorKind::NotFound || e.kind() == csal_core::ErrorKind::Auth {
                StorageError::auth(format!(
                    "server {}:{} refused the login of user '{}' (wrong password?)",
                    cfg.host, cfg.port, cfg.username
                ))
                .with_source(e)
            } else {
                e
            }
        })?;
        timed(limit, "TYPE I", ftp.transfer_type(FileType::Binary)).await?;
        tracing::debug!(host = %cfg.host, port = cfg.port, "ftp connected");
        Ok(ftp)
    }

    pub(crate) async fn shutdown(&self) {
        let idle: Vec<(Ftp, Instant)> = std::mem::take(&mut *self.idle.lock().expect("lock"));
        for (mut ftp, _) in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), ftp.quit()).await;
        }
    }
}

/// The FTPS client config: the policy's trust roots (system store plus
/// `ca_file`, [`csal_core::tls`]), or any certificate with `accept_invalid_certs`.
fn tls_config(accept_invalid: bool, ca_file: Option<&csal_core::tls::CaFile>) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::permanent("TLS setup failed").with_source(e))?;
    let config = if accept_invalid {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider))).with_no_client_auth()
    } else {
        builder.with_root_certificates(csal_core::tls::root_store(ca_file)).with_no_client_auth()
    };
    Ok(config)
}

/// `accept_invalid_certs`: any certificate is trusted, but handshake
/// signatures are still verified (the session is still encrypted).
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
