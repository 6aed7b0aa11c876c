//! SSH connection, authentication, host-key check and the reconnecting SFTP
//! session. Every network step has a deadline: the connect timeout for
//! TCP + key exchange + login + subsystem start, and the operation timeout
//! for each SFTP reply (russh-sftp's request timeout) and each call here.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use csal_core::{ExposeSecret, Result, StorageError};
use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::SftpSession;

use crate::config::{Credentials, HostKeyPolicy, SftpConfig};
use crate::error::{map_sftp, map_ssh};

/// One live SSH connection with its SFTP channel.
pub(crate) struct Session {
    pub(crate) sftp: SftpSession,
    handle: Handle<HostKeyCheck>,
}

impl Session {
    pub(crate) fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
}

/// russh handler: checks the server's host key against the pinned one.
pub(crate) struct HostKeyCheck {
    policy: HostKeyPolicy,
    /// The fingerprint of a refused key, for the error message.
    refused: Arc<Mutex<Option<String>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let public = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => cert.public_key().clone().into(),
        };
        if self.policy.accepts(&public) {
            return Ok(true);
        }
        *self.refused.lock().expect("lock") = Some(public.fingerprint(HashAlg::Sha256).to_string());
        Ok(false)
    }
}

/// Connects on demand and reconnects after the connection dropped.
pub(crate) struct SftpClient {
    config: SftpConfig,
    policy: HostKeyPolicy,
    credentials: Credentials,
    current: tokio::sync::Mutex<Option<Arc<Session>>>,
}

impl SftpClient {
    pub(crate) fn new(config: SftpConfig, policy: HostKeyPolicy, credentials: Credentials) -> Self {
        SftpClient { config, policy, credentials, current: tokio::sync::Mutex::new(None) }
    }

    pub(crate) fn config(&self) -> &SftpConfig {
        &self.config
    }

    /// The live session, connecting (again) if there is none or it dropped.
    pub(crate) async fn session(&self) -> Result<Arc<Session>> {
        let mut current = self.current.lock().await;
        if let Some(s) = current.as_ref() {
            if !s.is_closed() {
                return Ok(s.clone());
            }
            tracing::info!(host = %self.config.host, "sftp connection dropped; reconnecting");
        }
        *current = None;
        let session = Arc::new(self.connect().await?);
        *current = Some(session.clone());
        Ok(session)
    }

    /// Forget `session` if it is still the current one (after a connection error).
    pub(crate) async fn discard(&self, session: &Arc<Session>) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, session)) {
            *current = None;
        }
    }

    /// Run `op` on the session with the operation deadline; a connection-level
    /// failure drops the session so the next call reconnects.
    pub(crate) async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T>
    where
        F: FnOnce(Arc<Session>) -> Fut,
        Fut: Future<Output = std::result::Result<T, russh_sftp::client::error::Error>>,
    {
        let session = self.session().await?;
        let limit = self.config.operation_timeout();
        let result = match tokio::time::timeout(limit, op(session.clone())).await {
            Ok(r) => r.map_err(|e| map_sftp(e, what)),
            Err(_) => Err(StorageError::timeout(format!("{what}: no reply within {} s", limit.as_secs()))),
        };
        if let Err(e) = &result
            && (e.is_transient() || session.is_closed())
        {
            self.discard(&session).await;
        }
        result
    }

    async fn connect(&self) -> Result<Session> {
        let limit = self.config.connect_timeout();
        match tokio::time::timeout(limit, self.connect_inner()).await {
            Ok(r) => r,
            Err(_) => Err(StorageError::timeout(format!(
                "connecting to {}:{} took longer than {} s",
                self.config.host,
                self.config.port,
                limit.as_secs()
            ))),
        }
    }

    async fn connect_inner(&self) -> Result<Session> {
        let cfg = &self.config;
        let ssh_config = Arc::new(client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(15)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        let refused = Arc::new(Mutex::new(None));
        let handler = HostKeyCheck { policy: self.policy.clone(), refused: refused.clone() };
        let mut handle = match client::connect(ssh_config, (cfg.host.as_str(), cfg.port), handler).await {
            Ok(h) => h,
            Err(e) => {
                if let Some(fp) = refused.lock().expect("lock").take() {
                    return Err(StorageError::auth(format!(
                        "host key of {}:{} ({fp}) does not match the pinned 'host_key': refusing to connect \
                         (if the server's key really changed, update 'host_key')",
                        cfg.host, cfg.port
                    )));
                }
                return Err(map_ssh(e, &format!("connecting to {}:{}", cfg.host, cfg.port)));
            }
        };
        let auth = match &self.credentials {
            Credentials::Password(pw) => handle.authenticate_password(&cfg.username, pw.expose_secret()).await,
            Credentials::Key(key) => {
                let hash = handle.best_supported_rsa_hash().await.map_err(|e| map_ssh(e, "login"))?.flatten();
                handle.authenticate_publickey(&cfg.username, PrivateKeyWithHashAlg::new(key.clone(), hash)).await
            }
        }
        .map_err(|e| map_ssh(e, "login"))?;
        if !auth.success() {
            return Err(StorageError::auth(format!(
                "server {}:{} refused the login of user '{}' (wrong password or key?)",
                cfg.host, cfg.port, cfg.username
            )));
        }
        let channel = handle.channel_open_session().await.map_err(|e| map_ssh(e, "opening the SFTP channel"))?;
        channel.request_subsystem(true, "sftp").await.map_err(|e| map_ssh(e, "starting the SFTP subsystem"))?;
        let sftp_config = russh_sftp::client::Config {
            request_timeout_secs: cfg.operation_timeout().as_secs(),
            ..Default::default()
        };
        let sftp = SftpSession::new_with_config(channel.into_stream(), sftp_config)
            .await
            .map_err(|e| map_sftp(e, "starting the SFTP session"))?;
        tracing::debug!(host = %cfg.host, port = cfg.port, "sftp connected");
        Ok(Session { sftp, handle })
    }

    pub(crate) async fn shutdown(&self) {
        if let Some(s) = self.current.lock().await.take() {
            let _ = s.sftp.close().await;
            let _ = s.handle.disconnect(russh::Disconnect::ByApplication, "bye", "en").await;
        }
    }
}

/// Test support: a bare SFTP rename `from` -> `to` under the config's base
/// folder, to show the server refuses to replace an existing file.
#[doc(hidden)]
pub async fn rename_probe(config: &serde_json::Value, from: &str, to: &str) -> Result<()> {
    let config: SftpConfig = csal_core::parse_config("sftp", config)?;
    let (policy, credentials) = config.validate()?;
    let client = SftpClient::new(config, policy, credentials);
    let base = client.config().base();
    let (from, to) = (crate::paths::full_path(&base, from), crate::paths::full_path(&base, to));
    client.run("rename", |s| async move { s.sftp.rename(from, to).await }).await
}
