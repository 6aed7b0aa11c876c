//! The clients of the transfer contests. Each does one upload of generated
//! bytes, one streaming download (counted and CRC32C-checked, never kept)
//! and a delete, the way an application would write it with that library.

pub mod aws_sdk;
pub mod csal;
pub mod object_store;
pub mod opendal;
pub mod tokio_fs;

use anyhow::Result;
use futures::{Stream, StreamExt};

use crate::contest::{Backend, Client};
use crate::source::Digest;

/// One client's three operations. `upload` returns the key to read back by.
pub trait Peer {
    async fn upload(&self, key: &str, size: u64) -> Result<String>;
    async fn download(&self, key: &str) -> Result<Digest>;
    async fn delete(&self, key: &str) -> Result<()>;
}

/// A connected client of any kind (enum dispatch: `Peer` has async methods).
pub enum AnyPeer {
    Csal(csal::Csal),
    AwsSdk(aws_sdk::AwsSdk),
    ObjectStore(object_store::ObjectStorePeer),
    OpenDal(opendal::OpenDal),
    TokioFs(tokio_fs::TokioFs),
}

impl AnyPeer {
    pub fn connect(backend: Backend, client: Client) -> Result<AnyPeer> {
        Ok(match client {
            Client::Csal => AnyPeer::Csal(csal::Csal::new(backend)?),
            Client::AwsSdkS3 => AnyPeer::AwsSdk(aws_sdk::AwsSdk::new(&crate::env::S3Server::from_env()?)),
            Client::ObjectStore => AnyPeer::ObjectStore(object_store::ObjectStorePeer::new(backend)?),
            Client::Opendal => AnyPeer::OpenDal(opendal::OpenDal::for_backend(backend)?),
            Client::TokioFs => AnyPeer::TokioFs(tokio_fs::TokioFs::new()?),
        })
    }

    pub async fn upload(&self, key: &str, size: u64) -> Result<String> {
        match self {
            AnyPeer::Csal(p) => p.upload(key, size).await,
            AnyPeer::AwsSdk(p) => p.upload(key, size).await,
            AnyPeer::ObjectStore(p) => p.upload(key, size).await,
            AnyPeer::OpenDal(p) => p.upload(key, size).await,
            AnyPeer::TokioFs(p) => p.upload(key, size).await,
        }
    }

    pub async fn download(&self, key: &str) -> Result<Digest> {
        match self {
            AnyPeer::Csal(p) => p.download(key).await,
            AnyPeer::AwsSdk(p) => p.download(key).await,
            AnyPeer::ObjectStore(p) => p.download(key).await,
            AnyPeer::OpenDal(p) => p.download(key).await,
            AnyPeer::TokioFs(p) => p.download(key).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            AnyPeer::Csal(p) => p.delete(key).await,
            AnyPeer::AwsSdk(p) => p.delete(key).await,
            AnyPeer::ObjectStore(p) => p.delete(key).await,
            AnyPeer::OpenDal(p) => p.delete(key).await,
            AnyPeer::TokioFs(p) => p.delete(key).await,
        }
    }
}

/// Count and checksum a downloaded body chunk by chunk.
pub async fn digest_of<B, E>(mut body: impl Stream<Item = std::result::Result<B, E>> + Unpin) -> Result<Digest>
where
    B: AsRef<[u8]>,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut digest = Digest::default();
    while let Some(chunk) = body.next().await {
        digest.add(chunk?.as_ref());
    }
    Ok(digest)
}
