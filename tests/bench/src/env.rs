//! Where the servers are: the `CSAL_TEST_*` variables `cargo xtask bench`
//! exports for s3s-fs, fake-gcs-server and Azurite, and the local_fs root
//! the parent hands its children.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::contest::Backend;

/// Bucket or container of every cloud benchmark.
pub const BUCKET: &str = "csal-bench";
/// Directory under which the local file-system clients store (set by the parent for its children).
pub const LOCAL_ROOT_VAR: &str = "CSAL_BENCH_LOCAL_ROOT";

pub const S3_ENDPOINT_VAR: &str = "CSAL_TEST_S3_S3SFS_ENDPOINT";
pub const GCS_ENDPOINT_VAR: &str = "CSAL_TEST_GCS_ENDPOINT";
pub const AZURE_ENDPOINT_VAR: &str = "CSAL_TEST_AZURE_ENDPOINT";

pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str) -> Result<String> {
    var(name).with_context(|| format!("{name} is unset (run under `cargo xtask bench`)"))
}

/// The S3 server (s3s-fs).
#[derive(Clone)]
pub struct S3Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

impl S3Server {
    pub fn from_env() -> Result<S3Server> {
        Ok(S3Server {
            endpoint: required(S3_ENDPOINT_VAR)?,
            access_key: required("CSAL_TEST_S3_S3SFS_ACCESS_KEY")?,
            secret_key: required("CSAL_TEST_S3_S3SFS_SECRET_KEY")?,
        })
    }

    /// The same server reached through another endpoint (the fault proxy).
    pub fn via(&self, endpoint: &str) -> S3Server {
        S3Server { endpoint: endpoint.to_owned(), ..self.clone() }
    }
}

/// Azurite's account.
pub struct AzureServer {
    pub endpoint: String,
    pub account: String,
    pub key: String,
}

impl AzureServer {
    pub fn from_env() -> Result<AzureServer> {
        Ok(AzureServer {
            endpoint: required(AZURE_ENDPOINT_VAR)?,
            account: required("CSAL_TEST_AZURE_ACCOUNT")?,
            key: required("CSAL_TEST_AZURE_KEY")?,
        })
    }
}

pub fn gcs_endpoint() -> Result<String> {
    required(GCS_ENDPOINT_VAR)
}

pub fn local_root() -> Result<PathBuf> {
    required(LOCAL_ROOT_VAR).map(PathBuf::from)
}

/// The variable whose absence means `backend` cannot be measured (None: always available).
pub fn missing(backend: Backend) -> Option<&'static str> {
    let needed = match backend {
        Backend::S3 => S3_ENDPOINT_VAR,
        Backend::Gcs => GCS_ENDPOINT_VAR,
        Backend::Azure => AZURE_ENDPOINT_VAR,
        Backend::LocalFs => return None,
    };
    var(needed).is_none().then_some(needed)
}

/// The router instance CSAL's client uses for `backend`: provider type and
/// config (provider defaults, except csal-s3's part size and parts in
/// flight, set to what every S3 peer is given).
pub fn csal_instance(backend: Backend) -> Result<(&'static str, serde_json::Value)> {
    Ok(match backend {
        Backend::S3 => ("s3", s3_config(&S3Server::from_env()?)),
        Backend::LocalFs => ("local_fs", serde_json::json!({ "root": local_root()?.join("csal"), "min_free_mb": 0 })),
        Backend::Gcs => ("gcs", serde_json::json!({ "bucket": BUCKET, "endpoint": gcs_endpoint()? })),
        Backend::Azure => {
            let a = AzureServer::from_env()?;
            let config = serde_json::json!({
                "account": a.account, "account_key": a.key, "endpoint": a.endpoint, "container": BUCKET,
            });
            ("azure_blob", config)
        }
    })
}

/// csal-s3's config for `server` (8 MiB parts, 4 in flight, up and down: the same as every peer with the knobs).
pub fn s3_config(server: &S3Server) -> serde_json::Value {
    serde_json::json!({
        "bucket": BUCKET,
        "endpoint": server.endpoint,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "force_path_style": true,
        "part_size_mb": crate::contest::PART_SIZE >> 20,
        "upload_concurrency": crate::contest::CONCURRENCY,
        "read_concurrency": crate::contest::CONCURRENCY,
    })
}
