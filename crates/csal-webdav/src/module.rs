use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta, Result,
    StorageError, StorageModule, WriteMeta, WriteReceipt,
};
use csal_http::Quota;
use reqwest::Method;

use crate::client::{DavClient, check_basic_transport, parse_base};
use crate::config::{DavAuth, NextcloudConfig, WebDavConfig};
use crate::error::status_error;
use crate::write::ChunkedUploads;
use crate::{list, read, write};

/// A WebDAV collection as a CSAL storage instance.
pub struct WebDavModule {
    client: Arc<DavClient>,
    chunked: Option<Arc<ChunkedUploads>>,
}

impl std::fmt::Debug for WebDavModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebDavModule").field("base", &self.client.base.as_str()).finish_non_exhaustive()
    }
}

pub(crate) fn build_webdav(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: WebDavConfig = csal_core::parse_config("webdav", config)?;
    Ok(Arc::new(WebDavModule::new(config)?))
}

pub(crate) fn build_nextcloud(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: NextcloudConfig = csal_core::parse_config("nextcloud", config)?;
    Ok(Arc::new(WebDavModule::nextcloud(config)?))
}

fn http_client(
    timeouts: csal_core::Timeouts,
    accept_invalid_certs: bool,
    ca_file: Option<csal_core::tls::CaFile>,
) -> Result<reqwest::Client> {
    csal_http::HttpOptions::new(concat!("csal-webdav/", env!("CARGO_PKG_VERSION")), timeouts)
        .accept_invalid_certs(accept_invalid_certs)
        .ca_file(ca_file)
        .build()
}

impl WebDavModule {
    /// A module from its config; no network until first use.
    pub fn new(config: WebDavConfig) -> Result<Self> {
        let base = parse_base("url", &config.url)?;
        let username = config.username.as_deref().filter(|u| !u.is_empty());
        if config.auth != DavAuth::None && username.is_some() && config.password.is_none() {
            return Err(StorageError::invalid_config("field 'password' is required when 'username' is set"));
        }
        if config.auth == DavAuth::Basic && username.is_some() {
            check_basic_transport("url", &base, "allow_insecure_basic", config.allow_insecure_basic)?;
        }
        let http = http_client(config.timeouts()?, config.accept_invalid_certs, config.trusted_ca()?)?;
        let client = DavClient::new(http, base, config.auth, username, config.password.as_ref())?;
        Ok(WebDavModule { client: Arc::new(client), chunked: None })
    }

    /// The `nextcloud` preset: `<server>/remote.php/dav/files/<user>/` plus
    /// chunked upload v2 through `<server>/remote.php/dav/uploads/<user>/`.
    pub fn nextcloud(config: NextcloudConfig) -> Result<Self> {
        let server = parse_base("server_url", &config.server_url)?;
        check_basic_transport("server_url", &server, "allow_insecure_basic", config.allow_insecure_basic)?;
        let user = config.username.trim();
        if user.is_empty() || user.contains('/') {
            return Err(StorageError::invalid_config("field 'username' must be a Nextcloud user id (no '/')"));
        }
        let chunk_size = config.chunk_size()?;
        let user_seg = crate::client::encode_path(user);
        let join = |p: &str| {
            server
                .join(p)
                .map_err(|_| StorageError::invalid_config("field 'server_url' cannot be joined with the DAV path"))
        };
        let files = join(&format!("remote.php/dav/files/{user_seg}/"))?;
        let uploads = join(&format!("remote.php/dav/uploads/{user_seg}/"))?;
        let http = http_client(config.timeouts()?, config.accept_invalid_certs, config.trusted_ca()?)?;
        let password = Some(&config.app_password);
        let client = DavClient::new(http.clone(), files, DavAuth::Basic, Some(user), password)?;
        let up = DavClient::new(http, uploads, DavAuth::Basic, Some(user), password)?;
        Ok(WebDavModule {
            client: Arc::new(client),
            chunked: Some(Arc::new(ChunkedUploads { client: up, chunk_size })),
        })
    }

    /// PROPFIND the root: a collection, and its RFC 4331 quota if the
    /// server answers one.
    async fn probe_root(&self) -> Result<Option<Quota>> {
        let entries = list::propfind_root_quota(&self.client)
            .await?
            .ok_or_else(|| StorageError::not_found("the configured URL does not exist on the server"))?;
        match entries.into_iter().find(|e| e.rel.is_empty()) {
            Some(e) if e.is_dir => Ok(e.quota),
            Some(_) => Err(StorageError::invalid_config("the configured URL is a file, not a collection")),
            None => Err(StorageError::permanent("the server's PROPFIND answer does not describe the configured URL")),
        }
    }
}

#[async_trait]
impl StorageModule for WebDavModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::FILE_SYNC.with_multipart(self.chunked.is_some()).with_server_side_copy(true)
    }

    async fn validate(&self) -> Result<()> {
        self.probe_root().await.map(|_| ())
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        write::write(&self.client, self.chunked.as_ref(), body, meta).await
    }

    async fn copy(&self, object_id: &str, meta: WriteMeta) -> Result<WriteReceipt> {
        let id = write::copy(&self.client, object_id, &meta).await?;
        let stored = self.stat(&id).await?;
        Ok(WriteReceipt { object_id: id, size: stored.size, checksum: None, etag: stored.etag, instance: None })
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        read::read(&self.client, object_id, range).await
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        let resp = self.client.simple(Method::DELETE, object_id, &[]).await?;
        match resp.status().as_u16() {
            200..=299 | 404 => Ok(()),
            _ => Err(status_error(resp.status(), resp.headers(), &format!("DELETE {object_id}"))),
        }
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        list::stat(&self.client, object_id).await
    }

    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        match self.probe_root().await {
            Ok(quota) => {
                let report = HealthReport::ok(started.elapsed()).with_detail("url", self.client.base.as_str());
                match quota {
                    Some(quota) => quota.apply(report),
                    None => report,
                }
            }
            Err(e) => HealthReport::offline(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_over_http_to_another_machine_are_refused_unless_allowed() {
        let dav = |extra: serde_json::Value| {
            let mut v = serde_json::json!({"url": "http://nas.example/dav/", "username": "u", "password": "pw-123"});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            csal_core::parse_config::<WebDavConfig>("webdav", &v).map(WebDavModule::new).unwrap()
        };
        let e = dav(serde_json::json!({})).expect_err("refused");
        assert_eq!(e.kind(), csal_core::ErrorKind::InvalidConfig);
        assert!(e.message().contains("allow_insecure_basic") && !e.message().contains("pw-123"), "{e}");
        assert!(dav(serde_json::json!({"allow_insecure_basic": true})).is_ok());
        assert!(dav(serde_json::json!({"auth": "digest"})).is_ok(), "digest never sends the password");
        let nc = |url: &str| {
            let v = serde_json::json!({"server_url": url, "username": "u", "app_password": "pw-123"});
            csal_core::parse_config::<NextcloudConfig>("nextcloud", &v).map(WebDavModule::nextcloud).unwrap()
        };
        assert!(nc("http://cloud.example").is_err());
        assert!(nc("http://127.0.0.1:8080").is_ok() && nc("https://cloud.example").is_ok());
    }
}
