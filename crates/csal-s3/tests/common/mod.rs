//! Helpers shared by the csal-s3 integration tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;

use csal_s3::{S3Config, S3Module};

pub const BUCKET: &str = "csal-conformance";

/// One S3 test server, as exported by xtask.
#[derive(Clone)]
pub struct Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl Server {
    pub fn moto() -> Option<Server> {
        let endpoint = csal_conformance::require_env("CSAL_TEST_S3_MOTO_ENDPOINT", "s3@moto", "s3")?;
        Some(Server { endpoint, access_key: "test".into(), secret_key: "testtest".into(), region: "us-east-1".into() })
    }

    pub fn s3sfs(label: &str) -> Option<Server> {
        let endpoint = csal_conformance::require_env("CSAL_TEST_S3_S3SFS_ENDPOINT", label, "s3")?;
        Some(Server {
            endpoint,
            access_key: std::env::var("CSAL_TEST_S3_S3SFS_ACCESS_KEY").unwrap_or_default(),
            secret_key: std::env::var("CSAL_TEST_S3_S3SFS_SECRET_KEY").unwrap_or_default(),
            region: "us-east-1".into(),
        })
    }

    /// s3s-fs without the skip report (for borrowing its signature check).
    pub fn s3sfs_if_running() -> Option<Server> {
        let endpoint = std::env::var("CSAL_TEST_S3_S3SFS_ENDPOINT").ok().filter(|e| !e.is_empty())?;
        Some(Server {
            endpoint,
            access_key: std::env::var("CSAL_TEST_S3_S3SFS_ACCESS_KEY").unwrap_or_default(),
            secret_key: std::env::var("CSAL_TEST_S3_S3SFS_SECRET_KEY").unwrap_or_default(),
            region: "us-east-1".into(),
        })
    }

    pub fn swift() -> Option<Server> {
        let endpoint = csal_conformance::require_env("CSAL_TEST_SWIFT_S3_ENDPOINT", "s3@swift-s3api", "s3")?;
        Some(Server {
            endpoint,
            access_key: std::env::var("CSAL_TEST_SWIFT_S3_ACCESS_KEY").unwrap_or_else(|_| "test:tester".into()),
            secret_key: std::env::var("CSAL_TEST_SWIFT_S3_SECRET_KEY").unwrap_or_else(|_| "testing".into()),
            region: "us-east-1".into(),
        })
    }

    /// An `s3` config for this server (5 MiB parts so tests reach multipart).
    pub fn config(&self, bucket: &str) -> serde_json::Value {
        serde_json::json!({
            "bucket": bucket,
            "region": self.region,
            "endpoint": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "force_path_style": true,
            "part_size_mb": 5,
        })
    }

    /// The same config with a wrong secret.
    pub fn bad_config(&self, bucket: &str) -> serde_json::Value {
        let mut c = self.config(bucket);
        c["secret_key"] = serde_json::json!("wrong-secret-key-for-tests");
        c
    }

    pub fn module(&self, bucket: &str) -> S3Module {
        let mut c = S3Config::new(bucket);
        c.region = self.region.clone();
        c.endpoint = Some(self.endpoint.clone());
        c.access_key = Some(self.access_key.clone());
        c.secret_key = Some(self.secret_key.clone().into());
        c.force_path_style = true;
        c.part_size_mb = 5;
        S3Module::new(c).expect("valid test config")
    }

    /// Create the bucket (the test's job, not xtask's); "already there" is fine.
    pub async fn ensure_bucket(&self, bucket: &str) {
        let module = self.module(bucket);
        let sdk = module.sdk_client();
        if sdk.head_bucket().bucket(bucket).send().await.is_ok() {
            return;
        }
        if let Err(e) = sdk.create_bucket().bucket(bucket).send().await {
            let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or_default().to_owned();
            assert!(
                code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists",
                "creating bucket {bucket} on {}: {code} {}",
                self.endpoint,
                aws_sdk_s3::error::DisplayErrorContext(&e)
            );
        }
    }
}

/// A plain HTTP/1.0 GET (not the SDK): status, headers (lowercase names), body.
pub fn http_get(url: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut s = TcpStream::connect(host).expect("connect");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body)
}
