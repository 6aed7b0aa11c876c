//! Baseline for local_fs: plain tokio::fs, with the same durability as
//! local_fs (the file and its directory are fsynced before the upload
//! counts as done), read back in 256 KiB reads.

use std::path::PathBuf;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Peer;
use crate::source::{self, Digest};

pub struct TokioFs {
    root: PathBuf,
}

impl TokioFs {
    pub fn new() -> Result<Self> {
        Ok(TokioFs { root: crate::env::local_root()?.join("tokio-fs") })
    }
}

/// fsync the directory holding `path` (what makes a new name durable).
pub async fn sync_dir_of(path: &std::path::Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::File::open(dir).await?.sync_all().await?;
    }
    Ok(())
}

impl Peer for TokioFs {
    async fn upload(&self, key: &str, size: u64) -> Result<String> {
        let path = self.root.join(key);
        tokio::fs::create_dir_all(path.parent().expect("key has a parent")).await?;
        let mut file = tokio::fs::File::create_new(&path).await?;
        for chunk in source::chunks(size) {
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        sync_dir_of(&path).await?;
        Ok(key.to_owned())
    }

    async fn download(&self, key: &str) -> Result<Digest> {
        let mut file = tokio::fs::File::open(self.root.join(key)).await?;
        let mut buf = vec![0u8; source::CHUNK];
        let mut digest = Digest::default();
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(digest);
            }
            digest.add(&buf[..n]);
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        Ok(tokio::fs::remove_file(self.root.join(key)).await?)
    }
}
