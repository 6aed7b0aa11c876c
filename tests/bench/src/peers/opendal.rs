//! Apache OpenDAL (`services-s3`): a `Writer` with `chunk(PART_SIZE)` and
//! `concurrent(CONCURRENCY)` (multipart upload), and one streaming read.
//! With `retry`, the operator gets OpenDAL's `RetryLayer` (its documented
//! way to survive transient errors), as the fault-injected recorder load
//! needs.

use anyhow::Result;
use opendal::Operator;
use opendal::services::S3;

use super::{Peer, digest_of};
use crate::contest::{CONCURRENCY, PART_SIZE};
use crate::env::{BUCKET, S3Server};
use crate::source::{self, Digest};

pub struct OpenDal {
    pub op: Operator,
}

impl OpenDal {
    pub fn new(server: &S3Server, retry: bool) -> Result<Self> {
        // Without `auto-register-services` the reqwest transport is installed by hand.
        opendal::install_default();
        let builder = S3::default()
            .bucket(BUCKET)
            .endpoint(&server.endpoint)
            .region("us-east-1")
            .access_key_id(&server.access_key)
            .secret_access_key(&server.secret_key)
            .disable_config_load()
            .disable_ec2_metadata();
        let mut op = Operator::new(builder)?;
        if retry {
            op = op.layer(opendal::layers::RetryLayer::new().with_jitter());
        }
        Ok(OpenDal { op })
    }
}

impl Peer for OpenDal {
    async fn upload(&self, key: &str, size: u64) -> Result<String> {
        let mut writer = self.op.writer_with(key).chunk(PART_SIZE).concurrent(CONCURRENCY).await?;
        for chunk in source::chunks(size) {
            if let Err(e) = writer.write(chunk).await {
                let _ = writer.abort().await;
                return Err(e.into());
            }
        }
        writer.close().await?;
        Ok(key.to_owned())
    }

    async fn download(&self, key: &str) -> Result<Digest> {
        digest_of(self.op.reader(key).await?.into_bytes_stream(..).await?).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        Ok(self.op.delete(key).await?)
    }
}
