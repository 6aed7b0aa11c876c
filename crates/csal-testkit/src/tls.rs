//! TLS in front of a plain test server, with a CA made by the test.
//!
//! [`TestCa`] is a fresh certificate authority (rcgen) and a server
//! certificate it signed for `127.0.0.1` and `localhost`; nothing on the
//! machine trusts it, so a client trusts it only when given [`TestCa::ca_file`]
//! (a provider's `ca_file`). [`TlsProxy`] listens on 127.0.0.1, completes the
//! TLS handshake with that certificate and forwards the decrypted bytes to a
//! plain server (an emulator or a csal-fakes fake), so every TLS-using
//! provider can be tested over `https://127.0.0.1:PORT` against the servers
//! the other tests use. [`TlsProxy::postgres`] first answers PostgreSQL's
//! in-protocol `SSLRequest` (the client asks, the server says `S`, then TLS
//! starts), as a PostgreSQL server with `ssl = on` does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};

/// A CA made for one test, its server certificate for 127.0.0.1 /
/// localhost, and the PEM files (CA, server certificate, server key) in a
/// folder removed on drop.
pub struct TestCa {
    dir: PathBuf,
    server_cert_der: rustls::pki_types::CertificateDer<'static>,
    server_key_der: Vec<u8>,
}

impl TestCa {
    /// A new CA and server certificate; panics only if the temp folder cannot be written.
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "csal test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("server params");
        params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &ca).expect("server certificate");
        let dir = std::env::temp_dir().join(format!("csal-test-ca-{}", ulid::Ulid::new().to_string().to_lowercase()));
        std::fs::create_dir_all(&dir).expect("create the test CA folder");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca.pem");
        std::fs::write(dir.join("server.pem"), cert.pem()).expect("write server.pem");
        std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("write server.key");
        TestCa { dir, server_cert_der: cert.der().clone(), server_key_der: key.serialize_der() }
    }

    /// The CA certificate (PEM): what a provider's `ca_file` is set to.
    pub fn ca_file(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    /// The server certificate (PEM), for servers that read files (vsftpd).
    pub fn server_cert_file(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server's private key (PEM).
    pub fn server_key_file(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// The folder holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A rustls server config presenting the server certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.server_key_der.clone().into());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.server_cert_der.clone()], key)
            .expect("server certificate and key");
        Arc::new(config)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS-terminating TCP proxy on 127.0.0.1 in front of a plain server.
pub struct TlsProxy {
    /// The loopback port the proxy accepts TLS on.
    pub port: u16,
    ca: TestCa,
    task: tokio::task::JoinHandle<()>,
}

/// What the proxy expects before the TLS handshake.
#[derive(Clone, Copy)]
enum Opening {
    /// TLS from the first byte (HTTPS).
    Tls,
    /// TLS when the client starts with a TLS handshake record, else plain
    /// bytes forwarded as they are.
    TlsOrPlain,
    /// PostgreSQL: an 8-byte SSLRequest, answered `S`, then TLS.
    PostgresSslRequest,
}

impl TlsProxy {
    /// HTTPS in front of `target` (a plain HTTP server), with a fresh [`TestCa`].
    pub async fn start(target: SocketAddr) -> TlsProxy {
        TlsProxy::spawn(target, Opening::Tls).await
    }

    /// HTTPS in front of the plain `http://HOST:PORT[/path]` server of `url`
    /// (an emulator endpoint as xtask exports it).
    pub async fn in_front_of(url: &str) -> TlsProxy {
        TlsProxy::start(socket_of(url)).await
    }

    /// Like [`TlsProxy::in_front_of`], but a client that does not start
    /// with a TLS handshake is forwarded in plain text: for servers that
    /// hand out `http://` URLs of their own host (Swift tempauth's storage
    /// URL names the host it was asked on, with the scheme it saw).
    pub async fn in_front_of_also_plain(url: &str) -> TlsProxy {
        TlsProxy::spawn(socket_of(url), Opening::TlsOrPlain).await
    }

    /// `url` (an `http://HOST:PORT/path` of the server behind the proxy)
    /// as reached through the proxy: `https://127.0.0.1:PROXY/path`.
    pub fn rewrite(&self, url: &str) -> String {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let path = rest.find('/').map_or("", |i| &rest[i..]);
        format!("{}{path}", self.url())
    }

    /// A provider `config` whose `url_keys` (URLs of the server behind the
    /// proxy) are pointed at the proxy: `(with_ca, without_ca)`, the first
    /// with `ca_file` set to the proxy's CA.
    pub fn configs(&self, config: &serde_json::Value, url_keys: &[&str]) -> (serde_json::Value, serde_json::Value) {
        let mut without_ca = config.clone();
        for key in url_keys {
            let url = config[*key].as_str().unwrap_or_else(|| panic!("config has no URL under {key}"));
            without_ca[*key] = self.rewrite(url).into();
        }
        let mut with_ca = without_ca.clone();
        with_ca["ca_file"] = self.ca_file().into();
        (with_ca, without_ca)
    }

    /// PostgreSQL with `ssl = on` in front of `target` (a PostgreSQL server
    /// reached in plain text): answers the client's SSLRequest, then TLS.
    pub async fn postgres(target: SocketAddr) -> TlsProxy {
        TlsProxy::spawn(target, Opening::PostgresSslRequest).await
    }

    async fn spawn(target: SocketAddr, opening: Opening) -> TlsProxy {
        let ca = TestCa::new();
        let acceptor = TlsAcceptor::from(ca.server_config());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the TLS proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, target, acceptor.clone(), opening));
            }
        });
        TlsProxy { port, ca, task }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA that signed the proxy's certificate (PEM path), for `ca_file`.
    pub fn ca_file(&self) -> String {
        self.ca.ca_file()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The socket address of `http://HOST:PORT[/path]` (HOST an IP or localhost).
pub fn socket_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority).replace("localhost", "127.0.0.1");
    authority.parse().unwrap_or_else(|_| panic!("not HOST:PORT with an IP address: {url}"))
}

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];

async fn serve(mut client: TcpStream, target: SocketAddr, acceptor: TlsAcceptor, opening: Opening) {
    if let Opening::TlsOrPlain = opening {
        // 0x16: a TLS handshake record (the ClientHello).
        let mut first = [0u8; 1];
        if !matches!(client.peek(&mut first).await, Ok(1) if first[0] == 0x16) {
            let Ok(mut server) = TcpStream::connect(target).await else { return };
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            return;
        }
    }
    if let Opening::PostgresSslRequest = opening {
        let mut request = [0u8; 8];
        if client.read_exact(&mut request).await.is_err() || request != SSL_REQUEST {
            return; // a client that does not ask for TLS is refused, like `hostssl` only
        }
        if client.write_all(b"S").await.is_err() {
            return;
        }
    }
    // A client that refuses our certificate ends the handshake here.
    let Ok(mut tls) = acceptor.accept(client).await else { return };
    let Ok(mut server) = TcpStream::connect(target).await else { return };
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
}
