//! Apache OpenDAL (`services-s3`, `services-gcs`, `services-azblob`): a
//! `Writer` with `chunk(PART_SIZE)` and `concurrent(CONCURRENCY)` (multipart
//! upload; on GCS with `if_not_exists`, which makes it a JSON-API resumable
//! upload, the one fake-gcs-server speaks, and refuses to overwrite as CSAL
//! does), and reads: on S3 its concurrent reader (`chunk(READ_RANGE)`,
//! `concurrent(CONCURRENCY)`, as CSAL reads in ranges there), elsewhere one
//! streaming read. With `retry`, the operator gets OpenDAL's
//! `RetryLayer` (its documented way to survive transient errors), as the
//! fault-injected recorder load needs.

use anyhow::Result;
use opendal::Operator;
use opendal::services::{Azblob, Gcs, S3};

use super::{Peer, digest_of};
use crate::contest::{Backend, CONCURRENCY, PART_SIZE, READ_RANGE};
use crate::env::{AzureServer, BUCKET, S3Server};
use crate::source::{self, Digest};

pub struct OpenDal {
    pub op: Operator,
    /// Uploads refuse to replace an existing object (GCS: see the module docs).
    if_not_exists: bool,
    /// Downloads as `CONCURRENCY` ranged reads of `READ_RANGE` at once (its
    /// `concurrent`/`chunk` reader), where CSAL reads in ranges too (S3).
    read_in_ranges: bool,
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
        Ok(OpenDal { op, if_not_exists: false, read_in_ranges: true })
    }

    /// The operator for a contest's backend.
    pub fn for_backend(backend: Backend) -> Result<Self> {
        opendal::install_default();
        match backend {
            Backend::S3 => Self::new(&S3Server::from_env()?, false),
            Backend::Gcs => {
                // fake-gcs-server takes any token.
                let builder = Gcs::default()
                    .bucket(BUCKET)
                    .endpoint(&crate::env::gcs_endpoint()?)
                    .token("fake-gcs-server".into())
                    .disable_vm_metadata()
                    .disable_config_load();
                Ok(OpenDal { op: Operator::new(builder)?, if_not_exists: true, read_in_ranges: false })
            }
            Backend::Azure => {
                let a = AzureServer::from_env()?;
                let builder = Azblob::default()
                    .container(BUCKET)
                    // The emulator's endpoint already names the account (path style).
                    .endpoint(a.endpoint.trim_end_matches('/'))
                    .account_name(&a.account)
                    .account_key(&a.key);
                Ok(OpenDal { op: Operator::new(builder)?, if_not_exists: false, read_in_ranges: false })
            }
            Backend::LocalFs => anyhow::bail!("OpenDAL is not a local_fs peer here"),
        }
    }
}

impl Peer for OpenDal {
    async fn upload(&self, key: &str, size: u64) -> Result<String> {
        let mut writer =
            self.op.writer_with(key).chunk(PART_SIZE).concurrent(CONCURRENCY).if_not_exists(self.if_not_exists).await?;
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
        let mut reader = self.op.reader_with(key);
        if self.read_in_ranges {
            reader = reader.chunk(READ_RANGE).concurrent(CONCURRENCY);
        }
        digest_of(reader.await?.into_bytes_stream(..).await?).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        Ok(self.op.delete(key).await?)
    }
}
