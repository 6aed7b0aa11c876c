//! Apache OpenDAL (`services-s3`): a `Writer` with `chunk(PART_SIZE)` and
//! `concurrent(CONCURRENCY)` (multipart upload), and one streaming read.

use anyhow::Result;
use futures::StreamExt;
use opendal::Operator;
use opendal::services::S3;

use super::source::{self, Digest};
use super::{BUCKET, CONCURRENCY, PART_SIZE, Peer, Server};

pub struct OpenDal {
    op: Operator,
}

impl OpenDal {
    pub fn new(server: &Server) -> Result<Self> {
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
        Ok(OpenDal { op: Operator::new(builder)? })
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
        let mut body = self.op.reader(key).await?.into_bytes_stream(..).await?;
        let mut digest = Digest::default();
        while let Some(chunk) = body.next().await {
            digest.add(&chunk?);
        }
        Ok(digest)
    }
}
