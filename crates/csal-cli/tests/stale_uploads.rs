//! Leftovers of a crashed upload (issue 20 item 5): `kill -9` of a real
//! `csal put` in the middle of a multipart upload to an s3 module on moto
//! leaves the upload on the server; health reports it, `csal fsck` finds
//! it and `csal fsck --repair` (what the scheduled reconciliation of
//! `csal serve` runs) aborts it. That only uploads older than the
//! instance's age are taken is shown in csal-s3's tests against Swift's
//! s3api: moto reports every upload as started in 2010.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::require;
use serde_json::{Value, json};

const OK: i32 = 0;
const UNHEALTHY: i32 = 6;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn csal(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("csal"));
        c.current_dir(self.dir.path())
            .env_remove("CSAL_MASTER_KEY")
            .env_remove("RUST_LOG")
            .env("CSAL_CATALOG", self.dir.path().join("csal.db"));
        c
    }
    fn run(&self, args: &[&str], code: i32) -> String {
        let out = self.csal().args(args).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "csal {args:?}\nstdout: {stdout}\nstderr: {stderr}");
        stdout.into_owned()
    }
}

/// The upload ids moto holds under `prefix` (moto does not check signatures).
async fn open_uploads(moto: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let xml = reqwest::get(format!("{moto}/{bucket}?uploads&prefix={prefix}")).await.unwrap().text().await.unwrap();
    xml.split("<UploadId>").skip(1).filter_map(|s| s.split_once("</UploadId>")).map(|(id, _)| id.to_owned()).collect()
}

/// Whether moto holds at least one part of the upload.
async fn has_parts(moto: &str, bucket: &str, key: &str, upload: &str) -> bool {
    let xml = reqwest::get(format!("{moto}/{bucket}/{key}?uploadId={upload}")).await.unwrap().text().await.unwrap();
    xml.contains("<PartNumber>")
}

async fn keys_of_uploads(moto: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let xml = reqwest::get(format!("{moto}/{bucket}?uploads&prefix={prefix}")).await.unwrap().text().await.unwrap();
    xml.split("<Key>").skip(1).filter_map(|s| s.split_once("</Key>")).map(|(k, _)| k.to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_put_leaves_an_upload_that_health_reports_and_fsck_repair_aborts() {
    let Some(moto) = require("CSAL_TEST_S3_MOTO_ENDPOINT") else { return };
    let bucket = format!("csal-crash-{}", ulid::Ulid::new().to_string().to_lowercase());
    let made = reqwest::Client::new().put(format!("{moto}/{bucket}")).send().await.unwrap();
    assert!(made.status().is_success(), "create bucket on moto: {}", made.status());
    let env = Env { dir: tempfile::tempdir().unwrap() };
    let config = json!({"bucket": bucket, "endpoint": moto, "region": "us-east-1", "access_key": "test",
        "secret_key": "testtest", "force_path_style": true, "part_size_mb": 5, "prefix": "crash",
        "stale_upload_hours": 0});
    env.run(&["module", "add", "cams", "--provider", "s3", "--config", &config.to_string()], OK);
    assert_eq!(env.run(&["module", "test", "cams"], OK).lines().count(), 1, "nothing left over yet");

    // A body that stops after two and a bit parts: the upload is under way
    // and waits for more bytes when it is killed.
    let mut put = env.csal().args(["put", "cams", "-", "--key-hint", "big.bin"]).stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = put.stdin.take().unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    for _ in 0..12 {
        stdin.write_all(&chunk).unwrap();
    }
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let upload = loop {
        let ids = open_uploads(&moto, &bucket, "crash/").await;
        let keys = keys_of_uploads(&moto, &bucket, "crash/").await;
        if let (Some(id), Some(key)) = (ids.first(), keys.first()) {
            if has_parts(&moto, &bucket, key, id).await {
                break id.clone();
            }
        }
        assert!(Instant::now() < deadline, "csal put never started a multipart upload with parts");
        assert!(put.try_wait().unwrap().is_none(), "csal put ended before it was killed");
        tokio::task::yield_now().await;
    };
    put.kill().unwrap(); // SIGKILL: no abort guard runs
    put.wait().unwrap();
    drop(stdin);
    assert_eq!(open_uploads(&moto, &bucket, "crash/").await, vec![upload.clone()], "the killed put's upload stays");

    // Health reports it (still `ok`: the target works), and says what to do.
    let health: Value = serde_json::from_str(&env.run(&["--json", "module", "test", "cams"], OK)).unwrap();
    assert_eq!(health["details"]["stale_uploads"], 1, "{health}");
    assert!(health["details"]["stale_upload_bytes"].is_u64(), "{health}");
    let text = env.run(&["module", "test", "cams"], OK);
    assert!(text.contains("1 unfinished upload(s)") && text.contains("csal fsck --repair"), "{text}");

    // fsck reports it (exit 6), --repair aborts it.
    let found = env.run(&["fsck"], UNHEALTHY);
    assert!(found.contains("stale_uploads") && found.contains("cams"), "{found}");
    let repaired: Value = serde_json::from_str(&env.run(&["--json", "fsck", "--repair"], OK)).unwrap();
    let finding = &repaired["findings"][0];
    assert_eq!((finding["kind"].as_str(), finding["repaired"].as_str()), (Some("stale_uploads"), Some("removed 1")));
    assert!(open_uploads(&moto, &bucket, "crash/").await.is_empty(), "ListMultipartUploads is empty");
    env.run(&["fsck"], OK);
    let health: Value = serde_json::from_str(&env.run(&["--json", "module", "test", "cams"], OK)).unwrap();
    assert_eq!(health["details"]["stale_uploads"], 0, "{health}");
}
