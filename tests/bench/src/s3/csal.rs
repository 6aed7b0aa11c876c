//! csal-s3 the way applications use it: through a `StorageRouter` built
//! from an `InstanceDefinition` of provider type `s3`, with the default
//! layers (timeouts, retries, metrics, write tally).

use anyhow::Result;
use csal_core::{ByteStream, InstanceDefinition, StorageRouter, WriteMeta};
use futures::StreamExt;

use super::source::{self, Digest};
use super::{BUCKET, CONCURRENCY, PART_SIZE, Peer, Server};

const INSTANCE: &str = "bench";

pub struct Csal {
    router: StorageRouter,
}

impl Csal {
    pub fn new(server: &Server) -> Self {
        let config = serde_json::json!({
            "bucket": BUCKET,
            "endpoint": server.endpoint,
            "access_key": server.access_key,
            "secret_key": server.secret_key,
            "force_path_style": true,
            "part_size_mb": PART_SIZE >> 20,
            "upload_concurrency": CONCURRENCY,
        });
        Csal { router: StorageRouter::from_definitions(&[InstanceDefinition::new(INSTANCE, "s3", config)]) }
    }
}

impl Peer for Csal {
    async fn upload(&self, key: &str, size: u64) -> Result<String> {
        let body = ByteStream::new(futures::stream::iter(source::chunks(size).map(Ok)), Some(size));
        let receipt = self.router.write(INSTANCE, body, WriteMeta::new(key)).await?;
        anyhow::ensure!(receipt.size == size, "receipt says {} of {size} bytes", receipt.size);
        Ok(receipt.object_id)
    }

    async fn download(&self, key: &str) -> Result<Digest> {
        let mut body = self.router.read(INSTANCE, key, None).await?;
        let mut digest = Digest::default();
        while let Some(chunk) = body.next().await {
            digest.add(&chunk?);
        }
        Ok(digest)
    }
}
