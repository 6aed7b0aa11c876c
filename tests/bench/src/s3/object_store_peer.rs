//! object_store (`aws` feature): `WriteMultipart` with `PART_SIZE` chunks and
//! at most `CONCURRENCY` parts in flight (`wait_for_capacity` before each
//! put), and one streaming GET.

use anyhow::Result;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};

use super::source::{self, Digest};
use super::{BUCKET, CONCURRENCY, PART_SIZE, Peer, Server};

pub struct ObjectStore {
    store: AmazonS3,
}

impl ObjectStore {
    pub fn new(server: &Server) -> Result<Self> {
        let store = AmazonS3Builder::new()
            .with_endpoint(&server.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(BUCKET)
            .with_access_key_id(&server.access_key)
            .with_secret_access_key(&server.secret_key)
            .with_virtual_hosted_style_request(false)
            .build()?;
        Ok(ObjectStore { store })
    }
}

impl Peer for ObjectStore {
    async fn upload(&self, key: &str, size: u64) -> Result<String> {
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        for chunk in source::chunks(size) {
            if let Err(e) = writer.wait_for_capacity(CONCURRENCY).await {
                writer.abort().await?;
                return Err(e.into());
            }
            writer.put(chunk);
        }
        writer.finish().await?;
        Ok(key.to_owned())
    }

    async fn download(&self, key: &str) -> Result<Digest> {
        let mut body = self.store.get(&Path::from(key)).await?.into_stream();
        let mut digest = Digest::default();
        while let Some(chunk) = body.next().await {
            digest.add(&chunk?);
        }
        Ok(digest)
    }
}
