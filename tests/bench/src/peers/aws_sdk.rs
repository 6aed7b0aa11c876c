//! Baseline: raw aws-sdk-s3 calls, as an application would write them
//! (SDK defaults, including its default request checksums): multipart
//! upload with `CONCURRENCY` parts in flight, one streaming GET.

use anyhow::{Context, Result};
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::StreamExt;

use super::{Peer, digest_of};
use crate::contest::{CONCURRENCY, PART_SIZE};
use crate::env::{BUCKET, S3Server as Server};
use crate::source::{self, Digest};

pub struct AwsSdk {
    client: aws_sdk_s3::Client,
}

/// A plain SDK client for `server` (also used by the parent for setup and cleanup).
pub fn client(server: &Server) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&server.endpoint)
        .credentials_provider(Credentials::new(&server.access_key, &server.secret_key, None, None, "csal-bench"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

impl AwsSdk {
    pub fn new(server: &Server) -> Self {
        AwsSdk { client: client(server) }
    }

    async fn upload_part(&self, key: &str, upload_id: &str, number: i32, body: bytes::Bytes) -> Result<CompletedPart> {
        let out = self
            .client
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .with_context(|| format!("upload part {number}"))?;
        Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_owned)).build())
    }

    async fn upload_parts(&self, key: &str, upload_id: &str, size: u64) -> Result<Vec<CompletedPart>> {
        futures::stream::iter(source::parts(size, PART_SIZE).enumerate())
            .map(|(i, part)| self.upload_part(key, upload_id, i as i32 + 1, part))
            .buffered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let _ = self.client.abort_multipart_upload().bucket(BUCKET).key(key).upload_id(upload_id).send().await;
    }
}

impl Peer for AwsSdk {
    async fn upload(&self, key: &str, size: u64) -> Result<String> {
        let created = self.client.create_multipart_upload().bucket(BUCKET).key(key).send().await?;
        let upload_id = created.upload_id().context("no upload id")?.to_owned();
        let parts = match self.upload_parts(key, &upload_id, size).await {
            Ok(parts) => parts,
            Err(e) => {
                self.abort(key, &upload_id).await;
                return Err(e);
            }
        };
        self.client
            .complete_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .context("complete multipart upload")?;
        Ok(key.to_owned())
    }

    async fn download(&self, key: &str) -> Result<Digest> {
        let mut body = self.client.get_object().bucket(BUCKET).key(key).send().await?.body;
        digest_of(futures::stream::poll_fn(move |cx| std::pin::Pin::new(&mut body).poll_next(cx))).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.client.delete_object().bucket(BUCKET).key(key).send().await?;
        Ok(())
    }
}
