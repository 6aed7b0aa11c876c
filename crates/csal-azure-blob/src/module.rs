//! The `StorageModule` impl: thin, delegates to the files beside it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use csal_core::{
    ByteRange, ByteStream, Capabilities, HealthReport, InstanceContext, ListPage, ListRequest, ObjectMeta, Result,
    StorageError, StorageModule, WriteMeta, WriteReceipt,
};

use crate::client::AzureClient;
use crate::config::{AzureBlobConfig, Credentials};
use crate::sign::BlobSas;
use crate::{list, read, write};

/// SAS URLs longer than this are refused (service SAS without a stored
/// access policy; Microsoft recommends short lifetimes).
const MAX_SAS_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// An `azure_blob` instance: one container.
pub struct AzureBlobModule {
    client: AzureClient,
}

pub(crate) fn build(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
    let config: AzureBlobConfig = csal_core::parse_config("azure_blob", config)?;
    Ok(Arc::new(AzureBlobModule::new(config)?))
}

impl AzureBlobModule {
    /// Build from a config; no network traffic until the first call.
    pub fn new(config: AzureBlobConfig) -> Result<Self> {
        Ok(AzureBlobModule { client: AzureClient::new(config.settings()?)? })
    }

    /// Create the container (private access). An existing container is
    /// fine. For setup tools, tests and benchmarks; not part of the contract.
    pub async fn create_container(&self) -> Result<()> {
        let what = format!("create container {}", self.client.settings.container);
        let request = self.client.http.put(self.client.container_url()?).header(reqwest::header::CONTENT_LENGTH, 0);
        match self.client.send(request, &what).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == csal_core::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn container_properties(&self) -> Result<()> {
        let what = format!("get container {}", self.client.settings.container);
        self.client.send(self.client.http.head(self.client.container_url()?), &what).await.map(drop)
    }
}

#[async_trait]
impl StorageModule for AzureBlobModule {
    fn capabilities(&self) -> Capabilities {
        Capabilities::OBJECT_STORE
            .with_presign(matches!(self.client.settings.credentials, Credentials::SharedKey { .. }))
            // 50,000 blocks of the configured size.
            .with_max_object_size(Some(50_000 * self.client.settings.block_size as u64))
    }

    async fn validate(&self) -> Result<()> {
        self.container_properties().await
    }

    /// Entra ID tokens: get a new one now. Keys and SAS tokens: nothing to do.
    async fn refresh_credentials(&self) -> Result<()> {
        match &self.client.settings.credentials {
            Credentials::Bearer { tokens } => tokens.force_refresh().await.map(drop),
            Credentials::SharedKey { .. } | Credentials::Sas { .. } => Ok(()),
        }
    }

    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
        write::write(&self.client, body, meta).await
    }

    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
        read::read(&self.client, object_id, range).await
    }

    async fn delete(&self, object_id: &str) -> Result<()> {
        let what = format!("delete {object_id}");
        let request =
            self.client.http.delete(self.client.blob_url(object_id)?).header("x-ms-delete-snapshots", "include");
        match self.client.send(request, &what).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, request: &ListRequest) -> Result<ListPage> {
        list::list(&self.client, request).await
    }

    async fn stat(&self, object_id: &str) -> Result<ObjectMeta> {
        read::stat(&self.client, object_id).await
    }

    async fn health_check(&self) -> HealthReport {
        let started = Instant::now();
        match self.container_properties().await {
            Ok(()) => HealthReport::ok(started.elapsed().max(Duration::from_nanos(1)))
                .with_detail("account", self.client.settings.account.clone())
                .with_detail("container", self.client.settings.container.clone()),
            Err(e) => HealthReport::offline(&e),
        }
    }

    async fn presign_read(&self, object_id: &str, expires_in: Duration) -> Result<String> {
        let Credentials::SharedKey { key } = &self.client.settings.credentials else {
            return Err(StorageError::unsupported(
                "SAS URLs need the account key (account_key or a connection string with AccountKey); \
                 user delegation SAS for Entra ID credentials is not implemented",
            ));
        };
        if expires_in.is_zero() || expires_in > MAX_SAS_LIFETIME {
            return Err(StorageError::invalid_input("a SAS URL must expire within 1 second to 7 days"));
        }
        let sas = BlobSas {
            account: &self.client.settings.account,
            container: &self.client.settings.container,
            blob: object_id,
            now: SystemTime::now(),
            expires_in,
        };
        let mut url = self.client.blob_url(object_id)?;
        url.set_query(Some(&sas.query(key)));
        Ok(url.to_string())
    }
}
