//! object_store: the S3, GCS, Azure and local file-system stores. Uploads
//! go through `WriteMultipart` with `PART_SIZE` chunks and at most
//! `CONCURRENCY` parts in flight (`wait_for_capacity` before each put).
//! Downloads are one streaming GET. Not on fake-gcs-server: object_store's
//! GCS store uploads with the XML API, which that emulator does not serve.
//!
//! The local store does not fsync; the upload here fsyncs the file and its
//! directory afterwards, so it gives the durability local_fs gives.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

use super::{Peer, digest_of};
use crate::contest::{Backend, CONCURRENCY, PART_SIZE};
use crate::env::{AzureServer, BUCKET, S3Server};
use crate::source::{self, Digest};

const AZURITE_DEFAULT: &str = "http://127.0.0.1:10000/";

pub struct ObjectStorePeer {
    store: Arc<dyn ObjectStore>,
    /// Local store: its root, to fsync what an upload wrote.
    local_root: Option<PathBuf>,
}

/// object_store's S3 store on `server` (also used by the recorder load).
pub fn s3_store(server: &S3Server) -> Result<Arc<dyn ObjectStore>> {
    let store = AmazonS3Builder::new()
        .with_endpoint(&server.endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(BUCKET)
        .with_access_key_id(&server.access_key)
        .with_secret_access_key(&server.secret_key)
        .with_virtual_hosted_style_request(false)
        .build()?;
    Ok(Arc::new(store))
}

impl ObjectStorePeer {
    pub fn new(backend: Backend) -> Result<Self> {
        let mut peer = ObjectStorePeer { store: Arc::new(object_store::memory::InMemory::new()), local_root: None };
        match backend {
            Backend::S3 => peer.store = s3_store(&S3Server::from_env()?)?,
            Backend::Gcs => {
                anyhow::bail!("object_store's GCS store uploads with the XML API, which fake-gcs-server does not serve")
            }
            Backend::Azure => {
                // Emulator mode: path-style URLs and signatures as Azurite wants them,
                // on Azurite's default address (object_store's, and the one xtask uses).
                let a = AzureServer::from_env()?;
                anyhow::ensure!(
                    a.endpoint.starts_with(AZURITE_DEFAULT),
                    "object_store's emulator mode expects Azurite on {AZURITE_DEFAULT}, not {}",
                    a.endpoint
                );
                let store = MicrosoftAzureBuilder::new()
                    .with_use_emulator(true)
                    .with_account(&a.account)
                    .with_access_key(&a.key)
                    .with_container_name(BUCKET)
                    .build()?;
                peer.store = Arc::new(store);
            }
            Backend::LocalFs => {
                let root = crate::env::local_root()?.join("object-store");
                std::fs::create_dir_all(&root)?;
                peer.store = Arc::new(LocalFileSystem::new_with_prefix(&root)?);
                peer.local_root = Some(root);
            }
        }
        Ok(peer)
    }
}

impl Peer for ObjectStorePeer {
    async fn upload(&self, key: &str, size: u64) -> Result<String> {
        let path = Path::from(key);
        let upload = self.store.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        for chunk in source::chunks(size) {
            if let Err(e) = writer.wait_for_capacity(CONCURRENCY).await {
                writer.abort().await?;
                return Err(e.into());
            }
            writer.put(chunk);
        }
        writer.finish().await?;
        if let Some(root) = &self.local_root {
            let file = root.join(key);
            tokio::fs::File::open(&file).await?.sync_all().await?;
            super::tokio_fs::sync_dir_of(&file).await?;
        }
        Ok(key.to_owned())
    }

    async fn download(&self, key: &str) -> Result<Digest> {
        digest_of(self.store.get(&Path::from(key)).await?.into_stream()).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        Ok(self.store.delete(&Path::from(key)).await?)
    }
}
