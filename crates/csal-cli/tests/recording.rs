//! The recording path end to end, with real parts: the `csal` binary is the
//! gateway, ffmpeg the recorder, s3s-fs / moto and local_fs the targets,
//! PostgreSQL the shared catalog of two nodes. Faults are real too: a
//! target process stopped and restarted, the gateway killed with SIGKILL.
//!
//! The check is always the same: every segment the gateway acknowledged is
//! on the targets its policy asks for, once each, with the bytes it was
//! given, and plays back.

mod common;
use common::require;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use csal_catalog::{Catalog, CopyState, MasterKey, SegmentQuery, SegmentRecord};
use csal_core::{ListRequest, SecretString};
use serde_json::{Value, json};

csal_core::link_providers!(csal_providers);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Poll `check` until it gives `Some`, failing after `limit`. For waiting
/// on other processes (ffmpeg, a restarted server), never as a delay.
async fn wait_for<T>(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One site: a catalog (SQLite file or PostgreSQL) with its key, targets,
/// and the tokens of a recorder, a viewer and an admin.
struct Site {
    dir: tempfile::TempDir,
    catalog_url: String,
    key: String,
    ingest: String,
    read: String,
    admin: String,
}

impl Site {
    fn new(catalog_url: Option<String>) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let catalog_url = catalog_url.unwrap_or_else(|| dir.path().join("csal.db").display().to_string());
        let key = MasterKey::generate().unwrap();
        let mut site = Site {
            dir,
            catalog_url,
            key: csal_core::ExposeSecret::expose_secret(&key).to_owned(),
            ingest: String::new(),
            read: String::new(),
            admin: String::new(),
        };
        site.ingest = site.token("recorder", "ingest");
        site.read = site.token("viewer", "read");
        site.admin = site.token("ops", "admin");
        site
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn csal(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_csal"));
        c.current_dir(self.dir.path())
            .env("CSAL_CATALOG", &self.catalog_url)
            .env("CSAL_MASTER_KEY", &self.key)
            .env_remove("RUST_LOG");
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.csal().args(args).output().unwrap();
        assert!(out.status.success(), "csal {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn token(&self, name: &str, scope: &str) -> String {
        self.run(&["admin", "create-token", name, "--scope", scope])
    }

    fn add_module(&self, name: &str, provider: &str, config: Value) {
        self.run(&["module", "add", name, "--provider", provider, "--config", &config.to_string()]);
    }

    fn local_target(&self, name: &str) -> PathBuf {
        let root = self.path(&format!("targets/{name}"));
        std::fs::create_dir_all(&root).unwrap();
        self.add_module(name, "local_fs", json!({"root": root}));
        root
    }

    /// The site's catalog, opened in this process (beside the servers).
    async fn catalog(&self) -> Catalog {
        Catalog::open(&self.catalog_url, MasterKey::Explicit(SecretString::from(self.key.clone()))).await.unwrap()
    }

    fn start(&self, spool: &str, extra: &[&str]) -> Node {
        Node::start(self, spool, extra)
    }
}

/// A running `csal serve`; killed (SIGKILL) when dropped.
struct Node {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Node {
    fn start(site: &Site, spool: &str, extra: &[&str]) -> Node {
        Node::start_on(site, spool, "127.0.0.1:0", extra)
    }

    fn start_on(site: &Site, spool: &str, listen: &str, extra: &[&str]) -> Node {
        let mut args = vec!["--json", "serve", "--listen", listen, "--spool-dir", spool, "--health-interval", "5"];
        args.extend_from_slice(extra);
        let mut child = site.csal().args(&args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let banner: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("serve banner {line:?}: {e}"));
        let url = banner["url"].as_str().unwrap().trim_end_matches('/').to_owned();
        Node { child, url, http: reqwest::Client::new() }
    }

    /// SIGKILL, and wait for the process to be gone.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn put_segment(
        &self,
        token: &str,
        camera: &str,
        name: &str,
        body: Vec<u8>,
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .put(format!("{}/v1/cameras/{camera}/segments/{name}", self.url))
            .bearer_auth(token)
            .body(body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
    }

    async fn get_json(&self, token: &str, path: &str) -> Value {
        let resp = self.http.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.unwrap();
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().await.unwrap()
    }

    async fn set_policy(&self, admin: &str, camera: &str, targets: &[&str], copies: u32) {
        let resp = self
            .http
            .put(format!("{}/api/policies/{camera}", self.url))
            .bearer_auth(admin)
            .json(&json!({"targets": targets, "copies": copies}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "set policy: {}", resp.text().await.unwrap());
    }

    /// Undelivered segments of every camera, from the shared index.
    async fn undelivered(&self, token: &str) -> u64 {
        let cams = self.get_json(token, "/v1/cameras").await;
        cams.as_array().unwrap().iter().map(|c| c["undelivered"].as_u64().unwrap()).sum()
    }

    async fn wait_all_delivered(&self, token: &str, limit: Duration) {
        wait_for("every segment delivered", limit, async || (self.undelivered(token).await == 0).then_some(())).await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every indexed segment of a camera.
async fn all_segments(catalog: &Catalog, camera: &str) -> Vec<SegmentRecord> {
    let mut out: Vec<SegmentRecord> = Vec::new();
    loop {
        let after = out.last().map(|s| (s.start_ms, s.name.clone()));
        let page =
            catalog.list_segments(camera, &SegmentQuery { after, limit: 1000, ..Default::default() }).await.unwrap();
        let done = page.len() < 1000;
        out.extend(page);
        if done {
            return out;
        }
    }
}

/// Each segment is stored on each of `targets` exactly once, with its bytes
/// (CRC32C of what the target returns equals the index's), and the targets
/// hold nothing else under the camera's folder.
async fn assert_stored_once_each(catalog: &Catalog, camera: &str, targets: &[&str]) -> Vec<SegmentRecord> {
    let segments = all_segments(catalog, camera).await;
    catalog.reload_router().await.unwrap();
    let router = catalog.router();
    for seg in &segments {
        let copies = catalog.segment_copies(&seg.id).await.unwrap();
        for target in targets {
            let copy =
                copies.iter().find(|c| c.target == *target).unwrap_or_else(|| panic!("{} not on {target}", seg.name));
            assert_eq!(copy.state, CopyState::Stored, "{} on {target}: {copy:?}", seg.name);
            let object = copy.object_id.as_deref().unwrap();
            let mut stream = router.read(target, object, None).await.unwrap();
            let (mut crc, mut len) = (0u32, 0u64);
            while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                let chunk = chunk.unwrap();
                crc = crc32c::crc32c_append(crc, &chunk);
                len += chunk.len() as u64;
            }
            assert_eq!((len, format!("{crc:08x}")), (seg.size, seg.crc32c.clone()), "{} on {target}", seg.name);
        }
    }
    for target in targets {
        let mut ids = Vec::new();
        let mut req = ListRequest::new(camera);
        loop {
            let page = router.list(target, &req).await.unwrap();
            ids.extend(page.objects.into_iter().map(|o| o.object_id));
            match page.next_page {
                Some(t) => req = req.with_continuation(Some(t)),
                None => break,
            }
        }
        assert_eq!(ids.len(), segments.len(), "{target} holds each of the {} segments once: {ids:?}", segments.len());
    }
    segments
}

/// An s3s-fs process of our own (so it can be stopped and started again
/// on the same port and data), with one bucket.
struct OwnS3 {
    bin: String,
    port: u16,
    data: PathBuf,
    child: Option<Child>,
}

const S3_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

impl OwnS3 {
    fn start(bin: String, data: PathBuf) -> OwnS3 {
        std::fs::create_dir_all(data.join("recordings")).unwrap();
        let mut s3 = OwnS3 { bin, port: free_port(), data, child: None };
        s3.resume();
        s3
    }

    fn resume(&mut self) {
        let child = Command::new(&self.bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                S3_KEY,
                "--secret-key",
                S3_SECRET,
            ])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn config(&self) -> Value {
        json!({"bucket": "recordings", "endpoint": format!("http://127.0.0.1:{}", self.port), "region": "us-east-1",
               "access_key": S3_KEY, "secret_key": S3_SECRET, "force_path_style": true})
    }
}

impl Drop for OwnS3 {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `ffmpeg -v error -i PLAYLIST -f null -`: decodes every segment; returns
/// (stderr, seconds decoded).
fn decode(ffmpeg: &str, token: &str, url: &str) -> (String, f64) {
    let out = Command::new(ffmpeg)
        .args(["-nostdin", "-v", "error", "-headers", &format!("Authorization: Bearer {token}\r\n"), "-i", url])
        .args(["-f", "null", "-", "-progress", "pipe:1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg could not read {url}: {}", String::from_utf8_lossy(&out.stderr));
    let progress = String::from_utf8_lossy(&out.stdout);
    let seconds = progress
        .lines()
        .filter_map(|l| l.strip_prefix("out_time_us="))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .next_back()
        .unwrap_or(0.0)
        / 1e6;
    (String::from_utf8_lossy(&out.stderr).into_owned(), seconds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_records_through_an_s3_outage_and_plays_back_from_the_gateway() {
    let (Some(ffmpeg), Some(s3_bin)) = (require("CSAL_TEST_FFMPEG"), require("CSAL_TEST_S3SFS_BIN")) else { return };
    let site = Site::new(None);
    let mut s3 = OwnS3::start(s3_bin, site.path("s3-data"));
    site.add_module("s3", "s3", s3.config());
    site.local_target("local");
    let node = site.start(&site.path("spool").display().to_string(), &[]);
    node.set_policy(&site.admin, "cam1", &["s3", "local"], 2).await;

    const SECONDS: u32 = 40;
    let base = format!("{}/v1/cameras/cam1", node.url);
    let mut recorder = Command::new(&ffmpeg)
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi"])
        .args(["-i", "testsrc=size=320x240:rate=25", "-t", &SECONDS.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-f", "hls", "-hls_time", "2"])
        .args(["-hls_list_size", "5", "-hls_flags", "program_date_time", "-strftime", "1", "-method", "PUT"])
        .args(["-headers", &format!("Authorization: Bearer {}\r\n", site.ingest)])
        .args(["-hls_segment_filename", &format!("{base}/segments/%Y%m%dT%H%M%S.ts"), &format!("{base}/live.m3u8")])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Mid-recording, the S3 target goes away for 20 s.
    let count =
        async || node.get_json(&site.read, "/v1/cameras/cam1/segments").await["segments"].as_array().unwrap().len();
    wait_for("three segments", Duration::from_secs(60), async || (count().await >= 3).then_some(())).await;
    s3.stop();
    let down_at = Instant::now();
    let before = count().await;
    wait_for("segments while s3 is down", Duration::from_secs(30), async || {
        (count().await >= before + 3).then_some(())
    })
    .await;
    assert!(node.undelivered(&site.read).await > 0, "with s3 down, segments wait in the spool");
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(down_at.elapsed())).await;
    s3.resume();

    let status = recorder.wait().unwrap();
    let mut errors = String::new();
    recorder.stderr.take().unwrap().read_to_string(&mut errors).unwrap();
    assert!(status.success(), "ffmpeg failed: {errors}");
    assert!(errors.trim().is_empty(), "ffmpeg reported errors: {errors}");
    node.wait_all_delivered(&site.read, Duration::from_secs(120)).await;
    // The gateway applies a playlist detached from its request (the recorder
    // may hang up before the answer), so ffmpeg can exit before its last
    // playlist has dated the last segment: wait for that, bounded.
    wait_for("every segment dated by the playlist", Duration::from_secs(30), async || {
        let listed = node.get_json(&site.read, "/v1/cameras/cam1/segments").await;
        listed["segments"].as_array().unwrap().iter().all(|s| !s["duration_s"].is_null()).then_some(())
    })
    .await;

    let catalog = site.catalog().await;
    let segments = assert_stored_once_each(&catalog, "cam1", &["s3", "local"]).await;
    assert!(segments.len() >= (SECONDS / 2 - 1) as usize, "{} segments for {SECONDS} s", segments.len());
    let undated: Vec<(usize, &str)> = segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.duration_ms.is_none())
        .map(|(i, s)| (i, s.name.as_str()))
        .collect();
    assert!(undated.is_empty(), "segments (index, name) of {} not dated by the playlist: {undated:?}", segments.len());
    let recorded: i64 = segments.iter().filter_map(|s| s.duration_ms).sum();
    assert!((recorded - i64::from(SECONDS) * 1000).abs() <= 2100, "indexed {recorded} ms of {SECONDS} s");
    for pair in segments.windows(2) {
        assert!(
            (pair[1].start_ms - pair[0].end_ms).abs() < 100,
            "no gap between {} and {}",
            pair[0].name,
            pair[1].name
        );
    }

    let (stderr, seconds) = decode(&ffmpeg, &site.read, &format!("{base}/playlist.m3u8"));
    assert!(stderr.trim().is_empty(), "decoding the VOD playlist reported: {stderr}");
    assert!((seconds * 1000.0 - recorded as f64).abs() < 500.0, "decoded {seconds} s of {recorded} ms");
    catalog.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_gateway_loses_nothing_acknowledged_and_stores_nothing_twice() {
    let Some(moto) = require("CSAL_TEST_S3_MOTO_ENDPOINT") else { return };
    let bucket = format!("rec-{}", ulid::Ulid::new().to_string().to_lowercase());
    let made = reqwest::Client::new().put(format!("{moto}/{bucket}")).send().await.unwrap();
    assert!(made.status().is_success(), "create bucket on moto: {}", made.status());
    let site = Site::new(None);
    site.add_module(
        "s3",
        "s3",
        json!({"bucket": bucket, "endpoint": moto, "region": "us-east-1",
        "access_key": "test", "secret_key": "test", "force_path_style": true}),
    );
    site.local_target("local");
    let spool = site.path("spool").display().to_string();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut node = Node::start_on(&site, &spool, &listen, &[]);
    for cam in ["cam1", "cam2", "cam3"] {
        node.set_policy(&site.admin, cam, &["s3", "local"], 2).await;
    }

    // Three cameras upload at once, 24 segments each (256 KiB to 1.25 MiB);
    // each segment is retried until the gateway acknowledges it, the way a
    // recorder with a local buffer does. The gateway is killed with
    // SIGKILL three times meanwhile (uploads and deliveries in flight) and
    // started again on the same port, spool and catalog.
    type Acked = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>;
    let acked: Acked = Default::default();
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut uploaders = Vec::new();
    for cam in ["cam1", "cam2", "cam3"] {
        let (acked, refused, token, url) = (acked.clone(), refused.clone(), site.ingest.clone(), node.url.clone());
        uploaders.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0..24u32 {
                let name = format!("seg{n:04}.ts");
                let len = 256 * 1024 * (1 + (n as usize * 7 + cam.len()) % 5);
                let data: Vec<u8> = (0..len).map(|i| (i as u32 ^ n.wrapping_mul(2_654_435_761)) as u8).collect();
                let deadline = Instant::now() + Duration::from_secs(90);
                loop {
                    let sent = http
                        .put(format!("{url}/v1/cameras/{cam}/segments/{name}"))
                        .bearer_auth(&token)
                        .body(data.clone())
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => break,
                        Ok(r) => panic!("{cam}/{name}: {} {}", r.status(), r.text().await.unwrap()),
                        Err(_) => refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    };
                    assert!(Instant::now() < deadline, "{cam}/{name} never acknowledged");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                acked.lock().unwrap().push((cam.to_owned(), name, data));
            }
        }));
    }
    let mut backlog_at_kills = 0;
    for at in [12, 30, 50] {
        wait_for("uploads to progress", Duration::from_secs(120), async || {
            (acked.lock().unwrap().len() >= at).then_some(())
        })
        .await;
        backlog_at_kills += node.undelivered(&site.read).await;
        node.kill9();
        node = Node::start_on(&site, &spool, &listen, &[]);
    }
    for u in uploaders {
        u.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let refused_while_down = refused.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(acked.len(), 72);
    assert!(backlog_at_kills > 0, "some kill hit the gateway with undelivered segments (the point of the test)");
    node.wait_all_delivered(&site.read, Duration::from_secs(120)).await;

    let catalog = site.catalog().await;
    for cam in ["cam1", "cam2", "cam3"] {
        let segments = assert_stored_once_each(&catalog, cam, &["s3", "local"]).await;
        let mine: Vec<_> = acked.iter().filter(|(c, _, _)| c == cam).collect();
        assert_eq!(segments.len(), mine.len(), "{cam}: exactly the acknowledged segments are indexed");
        for (_, name, data) in mine {
            let seg = segments.iter().find(|s| &s.name == name).unwrap_or_else(|| panic!("{cam}/{name} lost"));
            assert_eq!(seg.crc32c, format!("{:08x}", crc32c::crc32c(data)), "{cam}/{name}");
        }
    }
    // A retried upload of the same bytes is acknowledged, not stored again.
    let (cam, name, data) = &acked[0];
    let again = node.put_segment(&site.ingest, cam, name, data.clone()).await.unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::OK);
    assert_eq!(node.get_json(&site.read, "/v1/spool").await["stats"]["spool_segments"], 0);
    eprintln!(
        "{refused_while_down} uploads refused while the gateway was down and retried; {backlog_at_kills} segments \
         undelivered at the kills"
    );
    catalog.close().await;
}

/// A raw HTTP/1.1 request; returns the status code (0 if the server hung up).
fn raw_request(url: &str, head: &str, body: &[u8], half_close: bool) -> u16 {
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    if half_close {
        s.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_get_clear_refusals_and_a_full_spool_keeps_what_it_acknowledged() {
    let site = Site::new(None);
    site.local_target("local");
    site.run(&["module", "disable", "local"]);
    let node = site.start(&site.path("spool").display().to_string(), &["--spool-max", "300KB"]);
    node.set_policy(&site.admin, "cam1", &["local"], 1).await;
    let put = |token: &str, path: &str, body: Vec<u8>| {
        node.http.put(format!("{}{path}", node.url)).bearer_auth(token.to_owned()).body(body).send()
    };

    // Names: traversal, NUL, 10 kB, a bad camera.
    let ten_kb = "n".repeat(10_000);
    for path in [
        "/v1/cameras/cam1/segments/..%2F..%2Fetc%2Fpasswd".to_owned(),
        "/v1/cameras/cam1/segments/a%00b.ts".to_owned(),
        format!("/v1/cameras/cam1/segments/{ten_kb}"),
        "/v1/cameras/..%2Fcam/segments/x.ts".to_owned(),
        "/v1/cameras/cam%201/segments/x.ts".to_owned(),
    ] {
        let resp = put(&site.ingest, &path, b"x".to_vec()).await.unwrap();
        assert_eq!(resp.status(), 400, "{path:.80}");
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().len() < 300, "the error does not echo the input");
    }
    // Clients normalise `..` away; a raw request sends it as it is.
    let raw = format!(
        "PUT /v1/cameras/cam1/segments/.. HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1\r\nConnection: close\r\n\r\n",
        site.ingest
    );
    assert_eq!(raw_request(&node.url, &raw, b"x", false), 400);
    // Scopes.
    let seg = "/v1/cameras/cam1/segments/s.ts";
    let get =
        |token: &str, path: &str| node.http.get(format!("{}{path}", node.url)).bearer_auth(token.to_owned()).send();
    assert_eq!(get(&site.ingest, seg).await.unwrap().status(), 403, "an ingest token cannot read");
    assert_eq!(get(&site.ingest, "/api/modules").await.unwrap().status(), 403, "an ingest token is no admin");
    assert_eq!(get(&site.ingest, "/v1/cameras").await.unwrap().status(), 403);
    assert_eq!(put(&site.read, seg, b"x".to_vec()).await.unwrap().status(), 403, "a read token cannot record");
    assert_eq!(get(&site.read, "/api/modules").await.unwrap().status(), 403, "a read token is no admin");
    assert_eq!(node.http.put(format!("{}{seg}", node.url)).body("x").send().await.unwrap().status(), 401);
    // A body shorter than its Content-Length, the client gone: nothing indexed.
    let head = format!(
        "PUT /v1/cameras/cam1/segments/short.ts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\n",
        site.ingest
    );
    raw_request(&node.url, &head, &[7u8; 500], true);
    // The same request whole, with the client hanging up right after the
    // body (as ffmpeg does): stored.
    let head_whole = head.replace("short.ts", "whole.ts");
    raw_request(&node.url, &head_whole, &[7u8; 1000], true);
    let catalog = site.catalog().await;
    let whole = wait_for("the hung-up upload to be indexed", Duration::from_secs(10), async || {
        catalog.segment("cam1", "whole.ts").await.unwrap()
    })
    .await;
    assert_eq!(whole.size, 1000);
    assert!(catalog.segment("cam1", "short.ts").await.unwrap().is_none(), "a short body is never indexed");

    // The spool fills (its target is disabled): 507 with Retry-After.
    let mut acked = vec!["whole.ts".to_owned()];
    let mut full = None;
    for n in 0..10 {
        let name = format!("fill{n}.ts");
        let resp =
            put(&site.ingest, &format!("/v1/cameras/cam1/segments/{name}"), vec![n as u8; 100_000]).await.unwrap();
        match resp.status().as_u16() {
            201 => acked.push(name),
            507 => {
                full = Some(resp.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap());
                break;
            }
            other => panic!("{name}: {other}"),
        }
    }
    assert!(full.is_some_and(|s| s >= 1), "a full spool answers 507 with Retry-After");
    assert_eq!(acked.len(), 3, "1 kB + two 100 kB segments fit in 300 kB: {acked:?}");
    site.run(&["module", "enable", "local"]);
    node.wait_all_delivered(&site.read, Duration::from_secs(60)).await;
    let segments = assert_stored_once_each(&catalog, "cam1", &["local"]).await;
    let mut names: Vec<_> = segments.iter().map(|s| s.name.clone()).collect();
    names.sort();
    acked.sort();
    assert_eq!(names, acked, "everything acknowledged was delivered, nothing else");
    // The CLI reads the same index.
    let cams: Value = serde_json::from_str(&site.run(&["--json", "cameras"])).unwrap();
    assert_eq!((cams[0]["camera_id"].as_str(), cams[0]["segments"].as_u64()), (Some("cam1"), Some(3)));
    assert_eq!(cams[0]["undelivered"], 0);
    let listed = site.run(&["segments", "cam1"]);
    assert!(acked.iter().all(|n| listed.contains(n.as_str())), "{listed}");
    let spool = site.run(&["spool", "--spool-dir", &site.path("spool").display().to_string()]);
    assert!(spool.contains("every spool is empty") && spool.contains("0 segment files"), "{spool}");
    let bad = site.csal().args(["segments", "../x"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "a hostile camera id is a usage error");
    // The capacity forecast counts what the index says the target holds.
    let capacity: Value = serde_json::from_str(&site.run(&["--json", "capacity"])).unwrap();
    let local = capacity["targets"].as_array().unwrap().iter().find(|t| t["target"] == "local").unwrap().clone();
    let total: u64 = segments.iter().map(|s| s.size).sum();
    assert_eq!((local["stored_copies"].as_u64(), local["stored_bytes"].as_u64()), (Some(3), Some(total)), "{local}");
    assert!(local["bytes_per_day"].as_u64().unwrap() > 0 && local["free_bytes"].as_u64().is_some(), "{local}");
    catalog.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgresql_ingest_different_cameras_and_share_one_index() {
    let Some(base) = require("CSAL_TEST_POSTGRES_URL") else { return };
    let schema = format!("rec_{}", ulid::Ulid::new().to_string().to_lowercase());
    let loc = csal_sql::DbLocation::parse(&base, None, true).unwrap();
    let pool = loc.connect(1, Duration::from_secs(10)).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.unwrap();
    pool.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    let site = Site::new(Some(format!("{base}{sep}options[search_path]={schema}")));
    site.local_target("shared");
    let a = site.start(&site.path("spool-a").display().to_string(), &[]);
    let b = site.start(&site.path("spool-b").display().to_string(), &[]);
    a.set_policy(&site.admin, "cam-a", &["shared"], 1).await;
    a.set_policy(&site.admin, "cam-b", &["shared"], 1).await;
    for n in 0..5u8 {
        let (name_a, name_b) = (format!("a{n}.ts"), format!("b{n}.ts"));
        let (ra, rb) = tokio::join!(
            a.put_segment(&site.ingest, "cam-a", &name_a, vec![n; 50_000]),
            b.put_segment(&site.ingest, "cam-b", &name_b, vec![n + 100; 60_000]),
        );
        assert_eq!(ra.unwrap().status(), 201);
        assert_eq!(rb.unwrap().status(), 201);
    }
    for node in [&a, &b] {
        let cams = node.get_json(&site.read, "/v1/cameras").await;
        let ids: Vec<&str> = cams.as_array().unwrap().iter().map(|c| c["camera_id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["cam-a", "cam-b"], "either node's index shows both cameras");
        assert!(cams.as_array().unwrap().iter().all(|c| c["segments"] == 5));
    }
    a.wait_all_delivered(&site.read, Duration::from_secs(60)).await;
    // Each node plays back the other's segments (from the shared target).
    let resp =
        a.http.get(format!("{}/v1/cameras/cam-b/segments/b3.ts", a.url)).bearer_auth(&site.read).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), vec![103u8; 60_000]);
    let catalog = site.catalog().await;
    let nodes = catalog.spool_summary().await.unwrap();
    assert!(nodes.is_empty(), "both spools delivered everything: {nodes:?}");
    assert_stored_once_each(&catalog, "cam-a", &["shared"]).await;
    assert_stored_once_each(&catalog, "cam-b", &["shared"]).await;
    catalog.close().await;
}
