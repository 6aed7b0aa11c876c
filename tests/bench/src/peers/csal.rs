//! CSAL the way applications use it: a `StorageRouter` built from one
//! instance definition, with the default layers (timeouts, retries,
//! metrics, length check and CRC32C tally).

use anyhow::Result;
use csal_core::{ByteStream, InstanceDefinition, StorageRouter, WriteMeta};

use super::{Peer, digest_of};
use crate::contest::Backend;
use crate::source;

const INSTANCE: &str = "bench";

pub struct Csal {
    router: StorageRouter,
}

impl Csal {
    pub fn new(backend: Backend) -> Result<Self> {
        let (provider, config) = crate::env::csal_instance(backend)?;
        Ok(Csal { router: StorageRouter::from_definitions(&[InstanceDefinition::new(INSTANCE, provider, config)]) })
    }
}

impl Peer for Csal {
    async fn upload(&self, key: &str, size: u64) -> Result<String> {
        // A one-shot stream of known length (not replayable), as a socket or pipe gives it.
        let body = ByteStream::new(futures::stream::iter(source::chunks(size).map(Ok)), Some(size));
        let receipt = self.router.write(INSTANCE, body, WriteMeta::new(key)).await?;
        anyhow::ensure!(receipt.size == size, "receipt says {} of {size} bytes", receipt.size);
        Ok(receipt.object_id)
    }

    async fn download(&self, key: &str) -> Result<crate::source::Digest> {
        digest_of(self.router.read(INSTANCE, key, None).await?).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        Ok(self.router.delete(INSTANCE, key).await?)
    }
}
