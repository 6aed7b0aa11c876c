//! Leftovers of a crashed upload (issue 20 item 5): `kill -9` of a real
//! `csal put` in the middle of a multipart upload to an s3 module on moto
//! (or of a Static Large Object to a swift module) leaves the upload's
//! parts on the server; health reports them (s3), `csal fsck` finds them
//! and `csal fsck --repair` (what the scheduled reconciliation of `csal
//! serve` runs) removes them. That only uploads older than the instance's
//! age are taken is shown in csal-s3's tests against Swift's s3api: moto
//! reports every upload as started in 2010.

mod common;

use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
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

/// A `csal put MODULE -` that has sent `mib` MiB and waits for more (its
/// stdin stays open), so its upload is under way until it is killed.
struct StalledPut {
    child: Child,
    stdin: ChildStdin,
}

impl StalledPut {
    fn start(env: &Env, module: &str, mib: usize) -> StalledPut {
        let mut child =
            env.csal().args(["put", module, "-", "--key-hint", "big.bin"]).stdin(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let chunk = vec![0x5au8; 1 << 20];
        for _ in 0..mib {
            stdin.write_all(&chunk).unwrap();
        }
        stdin.flush().unwrap();
        StalledPut { child, stdin }
    }

    fn assert_running(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "csal put ended before it was killed");
    }

    /// SIGKILL: no abort guard or cleanup task runs.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        drop(self.stdin);
    }
}

/// `csal fsck` reports the module's leftover (exit 6); `--repair` removes
/// it; then fsck is clean.
fn assert_fsck_repairs(env: &Env, module: &str) {
    let found = env.run(&["fsck"], UNHEALTHY);
    assert!(found.contains("stale_uploads") && found.contains(module), "{found}");
    let repaired: Value = serde_json::from_str(&env.run(&["--json", "fsck", "--repair"], OK)).unwrap();
    let finding = &repaired["findings"][0];
    assert_eq!((finding["kind"].as_str(), finding["repaired"].as_str()), (Some("stale_uploads"), Some("removed 1")));
    env.run(&["fsck"], OK);
}

/// A GET answer's text (moto does not check signatures).
async fn get(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// The values of `<tag>` elements in an XML answer.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(open.as_str()).skip(1).filter_map(|s| s.split_once(close.as_str())).map(|(v, _)| v.to_owned()).collect()
}

/// The (key, upload id) of the multipart uploads moto holds under `prefix`.
async fn open_uploads(moto: &str, bucket: &str, prefix: &str) -> Vec<(String, String)> {
    let xml = get(&format!("{moto}/{bucket}?uploads&prefix={prefix}")).await;
    xml_values(&xml, "Key").into_iter().zip(xml_values(&xml, "UploadId")).collect()
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

    // Two parts and a bit: parts 1 and 2 go up, the third waits for bytes.
    let mut put = StalledPut::start(&env, "cams", 12);
    let deadline = Instant::now() + Duration::from_secs(60);
    let upload = loop {
        if let Some((key, id)) = open_uploads(&moto, &bucket, "crash/").await.into_iter().next()
            && get(&format!("{moto}/{bucket}/{key}?uploadId={id}")).await.contains("<PartNumber>")
        {
            break (key, id);
        }
        assert!(Instant::now() < deadline, "csal put never started a multipart upload with parts");
        put.assert_running();
        tokio::task::yield_now().await;
    };
    put.kill9();
    assert_eq!(open_uploads(&moto, &bucket, "crash/").await, vec![upload], "the killed put's upload stays");

    // Health reports it (still `ok`: the target works), and says what to do.
    let health: Value = serde_json::from_str(&env.run(&["--json", "module", "test", "cams"], OK)).unwrap();
    assert_eq!(health["details"]["stale_uploads"], 1, "{health}");
    assert!(health["details"]["stale_upload_bytes"].is_u64(), "{health}");
    let text = env.run(&["module", "test", "cams"], OK);
    assert!(text.contains("1 unfinished upload(s)") && text.contains("csal fsck --repair"), "{text}");

    assert_fsck_repairs(&env, "cams");
    assert!(open_uploads(&moto, &bucket, "crash/").await.is_empty(), "ListMultipartUploads is empty");
    let health: Value = serde_json::from_str(&env.run(&["--json", "module", "test", "cams"], OK)).unwrap();
    assert_eq!(health["details"]["stale_uploads"], 0, "{health}");
}

/// The names in a Swift container (TempAuth: the v1 auth answer gives the
/// storage URL and a token).
async fn swift_names(auth_url: &str, user: &str, key: &str, container: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let auth = http.get(auth_url).header("X-Auth-User", user).header("X-Auth-Key", key).send().await.unwrap();
    let header = |name: &str| auth.headers()[name].to_str().unwrap().to_owned();
    let (storage, token) = (header("x-storage-url"), header("x-auth-token"));
    let resp = http.get(format!("{storage}/{container}?format=json")).header("X-Auth-Token", token).send().await;
    let resp = resp.unwrap();
    if resp.status().as_u16() == 404 || resp.status().as_u16() == 204 {
        return Vec::new();
    }
    let items: Vec<Value> = resp.json().await.unwrap();
    items.iter().filter_map(|i| i["name"].as_str()).map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_put_leaves_slo_segments_that_fsck_repair_deletes() {
    let (Some(auth_url), Some(user), Some(key)) =
        (require("CSAL_TEST_SWIFT_AUTH_URL"), require("CSAL_TEST_SWIFT_USER"), require("CSAL_TEST_SWIFT_KEY"))
    else {
        return;
    };
    let container = format!("crash-{}", ulid::Ulid::new().to_string().to_lowercase());
    let segments = format!("{container}_segments");
    let env = Env { dir: tempfile::tempdir().unwrap() };
    let config = json!({"auth_url": auth_url, "username": user, "password": key, "container": container,
        "segment_size_mb": 1, "stale_upload_hours": 0});
    env.run(&["module", "add", "vault", "--provider", "swift", "--config", &config.to_string()], OK);
    // The same container with the default age (24 h).
    let mut patient = config.clone();
    patient.as_object_mut().unwrap().remove("stale_upload_hours");
    env.run(&["module", "add", "patient", "--provider", "swift", "--config", &patient.to_string()], OK);
    // The containers exist before the put (validate creates them, retried
    // when a busy Swift answers 503; the put's one-shot body is not).
    env.run(&["module", "test", "vault"], OK);
    env.run(&["fsck"], OK);

    // Segments 1 and 2 go up, the third waits; the manifest never comes.
    let mut put = StalledPut::start(&env, "vault", 2);
    let deadline = Instant::now() + Duration::from_secs(60);
    while swift_names(&auth_url, &user, &key, &segments).await.is_empty() {
        assert!(Instant::now() < deadline, "csal put never stored a segment");
        put.assert_running();
        tokio::task::yield_now().await;
    }
    put.kill9();
    let left = swift_names(&auth_url, &user, &key, &segments).await;
    assert!(!left.is_empty(), "the killed put's segments stay");
    assert!(swift_names(&auth_url, &user, &key, &container).await.is_empty(), "no manifest, no object");

    // Health counts them (age 0 here), in the same details as S3's.
    let health: Value = serde_json::from_str(&env.run(&["--json", "module", "test", "vault"], OK)).unwrap();
    assert_eq!(health["details"]["stale_uploads"], 1, "{health}");
    assert!(health["details"]["stale_upload_bytes"].as_u64().unwrap() >= 1 << 20, "{health}");
    let health: Value = serde_json::from_str(&env.run(&["--json", "module", "test", "patient"], OK)).unwrap();
    assert_eq!(health["details"]["stale_uploads"], 0, "young: not counted as stale {health}");

    // Younger than 24 h: the default age leaves it alone, even with --repair.
    env.run(&["fsck", "--target", "patient", "--repair"], OK);
    // Nothing of it deleted. (A segment PUT whose body was already sent
    // when the writer died may still land after `left` was taken, so the
    // listing can have grown, never shrunk.)
    let now = swift_names(&auth_url, &user, &key, &segments).await;
    assert!(left.iter().all(|s| now.contains(s)), "a young upload is left alone: {left:?} then {now:?}");

    assert_fsck_repairs(&env, "vault");
    assert!(swift_names(&auth_url, &user, &key, &segments).await.is_empty(), "the segments are deleted");
    let health: Value = serde_json::from_str(&env.run(&["--json", "module", "test", "vault"], OK)).unwrap();
    assert_eq!(health["details"]["stale_uploads"], 0, "{health}");
}
