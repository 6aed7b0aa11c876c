//! The `StorageModule` impl: thin, delegates to the files beside it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use csal_core::{
    ByteRange, ByteStream, Capabilities, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta, Result,
    StorageError, StorageModule, WriteMeta, WriteReceipt,
};

use crate::auth::UrlSigner;
use crate::client::{GcsClient, ObjectResource};
use crate::config::GcsConfig;
use crate::presign::V4Request;
use crate::{list, read, write};

/// A `gcs` instance: one bucket.
pub struct GcsModule {
    client: GcsClient,
    /// Loaded on first presign (a bad key is an `Auth` error then).
    signer: tokio::sync::OnceCell<UrlSigner>,
}

pub(crate) fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: GcsConfig = csal_core::parse_config("gcs", config)?;
    Ok(Arc::new(GcsModule::new(config)?))
}

impl GcsModule {
    /// Build from a config; no network traffic until the first call.
    pub fn new(config: GcsConfig) -> Result<Self> {
        let settings = config.settings()?;
        Ok(GcsModule { client: GcsClient::new(settings)?, signer: tokio::sync::OnceCell::new() })
    }

    /// Create the bucket in `project`. An existing bucket is fine. For setup
    /// tools, tests and benchmarks (emulators); not part of the contract.
    pub async fn create_bucket(&self, project: &str) -> Result<()> {
        let what = format!("create bucket {}", self.client.settings.bucket);
        let mut url = self.client.endpoint_url("/storage/v1/b")?;
        url.query_pairs_mut().append_pair("project", project);
        let body = serde_json::json!({ "name": self.client.settings.bucket }).to_string();
        let request = self.client.http.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        match self.client.send(request, &what).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == csal_core::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn bucket_get(&self) -> Result<()> {
        let what = format!("get bucket {}", self.client.settings.bucket);
        self.client.send(self.client.http.get(self.client.bucket_url()?), &what).await.map(drop)
    }
}

#[async_trait]
impl StorageModule for GcsModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::OBJECT_STORE
            .with_presign(self.client.settings.signing_key.is_some())
            .with_max_object_size(Some(5 * 1024 * 1024 * 1024 * 1024))
            .with_server_side_copy(true)
    }

    async fn validate(&self) -> Result<()> {
        self.bucket_get().await
    }

    async fn refresh_credentials(&self) -> Result<()> {
        self.client.tokens.token().await.map(drop)
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        write::write(&self.client, body, meta).await
    }

    async fn copy(&self, object_id: &str, meta: WriteMeta) -> Result<WriteReceipt> {
        crate::write::copy(&self.client, object_id, &meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        read::read(&self.client, object_id, range).await
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        let what = format!("delete {object_id}");
        match self.client.send(self.client.http.delete(self.client.object_url(object_id)?), &what).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        let what = format!("stat {object_id}");
        let resource: ObjectResource =
            self.client.send_json(self.client.http.get(self.client.object_url(object_id)?), &what).await?;
        Ok(resource.to_meta())
    }

    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        match self.bucket_get().await {
            Ok(()) => HealthReport::ok(started.elapsed().max(Duration::from_nanos(1)))
                .with_detail("bucket", self.client.settings.bucket.clone())
                .with_detail("anonymous", self.client.tokens.is_anonymous()),
            Err(e) => HealthReport::offline(&e),
        }
    }

    async fn presign_read(&self, object_id: &str, expires_in: Duration) -> Result<String> {
        let key = self.client.settings.signing_key.as_ref().ok_or_else(|| {
            StorageError::unsupported("signed URLs need a service-account key (credentials_json or credentials_path)")
        })?;
        let signer = self.signer.get_or_try_init(|| async { UrlSigner::from_key(key) }).await?;
        V4Request {
            endpoint: &self.client.settings.endpoint,
            bucket: &self.client.settings.bucket,
            object: object_id,
            client_email: &signer.client_email,
            now: SystemTime::now(),
            expires_in,
        }
        .sign(signer)
    }
}
