use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use csal_core::{
    ByteRange, ByteStream, Capabilities, ExposeSecret, HealthReport, InstanceContext, ListPage, ListRequest,
    ObjectMeta, Result, StaleUploads, StorageError, StorageModule, WriteMeta, WriteReceipt,
};
use csal_http::Quota;
use hmac::{Hmac, Mac};
use reqwest::Method;

use crate::client::SwiftClient;
use crate::config::{OvhSwiftConfig, RackspaceConfig, Settings, SwiftConfig};
use crate::error::status_error;
use crate::{list, read, write};

/// A Swift container as a CSAL storage instance.
pub struct SwiftModule {
    client: Arc<SwiftClient>,
}

impl std::fmt::Debug for SwiftModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwiftModule")
            .field("provider", &self.client.settings.provider)
            .field("container", &self.client.settings.container)
            .finish_non_exhaustive()
    }
}

pub(crate) fn build_swift(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: SwiftConfig = csal_core::parse_config("swift", config)?;
    Ok(Arc::new(SwiftModule::from_settings(config.settings()?)?))
}

pub(crate) fn build_rackspace(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: RackspaceConfig = csal_core::parse_config("rackspace", config)?;
    Ok(Arc::new(SwiftModule::from_settings(config.settings()?)?))
}

pub(crate) fn build_ovh(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: OvhSwiftConfig = csal_core::parse_config("ovh_swift", config)?;
    Ok(Arc::new(SwiftModule::from_settings(config.settings()?)?))
}

impl SwiftModule {
    /// A module from its config; authenticates lazily, on first use.
    pub fn new(config: SwiftConfig) -> Result<Self> {
        Self::from_settings(config.settings()?)
    }

    fn from_settings(settings: Settings) -> Result<Self> {
        Ok(SwiftModule { client: Arc::new(SwiftClient::new(settings)?) })
    }

    /// HEAD the container: its object count and quota, or None if missing.
    async fn head_container(&self) -> Result<Option<(u64, Quota)>> {
        let container = &self.client.settings.container;
        let what = format!("HEAD container {container}");
        let resp = self
            .client
            .send(&what, |s| self.client.http.request(Method::HEAD, SwiftClient::container_url(s, container)))
            .await?;
        match resp.status().as_u16() {
            200..=299 => Ok(Some((
                header_u64(resp.headers(), "x-container-object-count").unwrap_or(0),
                header_quota(resp.headers(), "x-container-bytes-used", "x-container-meta-quota-bytes"),
            ))),
            404 => Ok(None),
            _ => Err(status_error(resp.status(), resp.headers(), &what)),
        }
    }

    /// HEAD the account: its bytes used and quota.
    async fn account_quota(&self) -> Result<Quota> {
        let what = "HEAD account";
        let resp =
            self.client.send(what, |s| self.client.http.request(Method::HEAD, s.storage_url.to_string())).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp.status(), resp.headers(), what));
        }
        Ok(header_quota(resp.headers(), "x-account-bytes-used", "x-account-meta-quota-bytes"))
    }
}

fn header_u64(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A Swift quota from a HEAD answer: the bytes used, and the limit the
/// `container_quotas` / `account_quotas` middlewares enforce when the
/// container's `X-Container-Meta-Quota-Bytes` or the account's
/// `X-Account-Meta-Quota-Bytes` is set
/// (<https://docs.openstack.org/swift/latest/middleware.html#container-quotas>,
/// `#account-quotas`); without it the storage is unlimited.
fn header_quota(headers: &reqwest::header::HeaderMap, used: &str, limit: &str) -> Quota {
    Quota::new(header_u64(headers, limit), header_u64(headers, used))
}

#[async_trait]
impl StorageModule for SwiftModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::OBJECT_STORE.with_presign(self.client.settings.temp_url_key.is_some()).with_server_side_copy(true)
    }

    async fn validate(&self) -> Result<()> {
        match self.head_container().await? {
            Some(_) => Ok(()),
            None if self.client.settings.create_container => self.client.ensure_containers().await,
            None => Err(StorageError::not_found(format!(
                "container '{}' does not exist (and create_container is off)",
                self.client.settings.container
            ))),
        }
    }

    async fn refresh_credentials(&self) -> Result<()> {
        self.client.auth.session().await.map(|_| ())
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        write::write(&self.client, body, meta).await
    }

    /// Server-side up to one segment; a Static Large Object is streamed.
    async fn copy(&self, object_id: &str, meta: WriteMeta) -> Result<WriteReceipt> {
        match write::copy(&self.client, object_id, &meta).await? {
            Some(receipt) => Ok(receipt),
            None => write::write(&self.client, self.read(object_id, None).await?, meta).await,
        }
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        read::read(&self.client, object_id, range).await
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        let what = format!("DELETE {object_id}");
        let container = &self.client.settings.container;
        // `multipart-manifest=delete` removes an SLO with its segments; Swift
        // refuses it (400) for a plain object, which is then deleted plainly.
        let resp = self
            .client
            .send(&what, |s| {
                self.client
                    .http
                    .request(Method::DELETE, SwiftClient::object_url(s, container, object_id))
                    .query(&[("multipart-manifest", "delete")])
                    .header("Accept", "application/json")
            })
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        // The bulk-delete answer carries its own status in the body.
        let code = if status.is_success() {
            let body: serde_json::Value = csal_http::read_json(resp, &what).await.unwrap_or(serde_json::Value::Null);
            let inner = body["Response Status"].as_str().unwrap_or("200 OK");
            inner.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(200)
        } else {
            status.as_u16()
        };
        let (code, headers) = if code == 400 {
            // "Not an SLO manifest": a plain object, deleted plainly.
            let resp = self
                .client
                .send(&what, |s| {
                    self.client.http.request(Method::DELETE, SwiftClient::object_url(s, container, object_id))
                })
                .await?;
            (resp.status().as_u16(), resp.headers().clone())
        } else {
            (code, headers)
        };
        match code {
            200..=299 | 404 => Ok(()),
            _ => Err(status_error(reqwest::StatusCode::from_u16(code).unwrap_or(status), &headers, &what)),
        }
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        read::stat(&self.client, object_id).await
    }

    /// Segments of uploads that never got their manifest ([`crate::stale`]).
    /// The health check counts them within `StaleUploads::HEALTH_CHECK_LIMIT`
    /// (it lists the segments container); `csal fsck` counts and removes them.
    async fn stale_uploads(&self, remove: bool) -> Result<StaleUploads> {
        crate::stale::sweep(&self.client, remove).await
    }

    /// Ok when the container answers (or is missing and will be created);
    /// the free bytes are the tighter of the container's and the account's
    /// quota, where either is set (SLO segments live in `<container>_segments`
    /// and count against the account's).
    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        let (report, container_quota) = match self.head_container().await {
            Ok(Some((count, quota))) => (HealthReport::ok(started.elapsed()).with_detail("objects", count), quota),
            Ok(None) if self.client.settings.create_container => (
                HealthReport::ok(started.elapsed()).with_detail("container", "missing; created on the first write"),
                Quota::default(),
            ),
            Ok(None) => return HealthReport::degraded(Some(started.elapsed()), "the container does not exist"),
            Err(e) => return HealthReport::offline(&e),
        };
        let mut report = match self.account_quota().await {
            Ok(account) => container_quota.tighter(account).apply(report),
            // A user limited to the container by ACLs may not HEAD the account.
            Err(e) => container_quota.apply(report).with_detail(csal_http::QUOTA_ERROR, e.to_string()),
        };
        StaleUploads::count_into(&mut report, self.stale_uploads(false)).await;
        report
    }

    /// A Swift temp URL (HMAC-SHA256 of `GET\n<expires>\n<path>`).
    async fn presign_read(&self, object_id: &str, expires_in: Duration) -> Result<String> {
        let Some(key) = &self.client.settings.temp_url_key else {
            return Err(StorageError::unsupported("presigned URLs need 'temp_url_key' in the config"));
        };
        let session = self.client.auth.session().await?;
        let url = SwiftClient::object_url(&session, &self.client.settings.container, object_id);
        let parsed = url::Url::parse(&url)
            .map_err(|_| StorageError::permanent("the storage URL from the catalog is not a URL"))?;
        let expires =
            (SystemTime::now() + expires_in).duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.expose_secret().as_bytes())
            .map_err(|_| StorageError::invalid_config("field 'temp_url_key' is not usable as an HMAC key"))?;
        mac.update(format!("GET\n{expires}\n{}", parsed.path()).as_bytes());
        let sig = hex::encode(mac.finalize().into_bytes());
        Ok(format!("{url}?temp_url_sig={sig}&temp_url_expires={expires}"))
    }
}
