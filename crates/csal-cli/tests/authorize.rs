//! `csal module authorize` end to end: the `csal` binary against the local
//! OneDrive / Dropbox / Box fakes, with a "browser" (reqwest following redirects)
//! that opens the printed URL and lands on the loopback listener.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use csal_fakes::{boxapi::FakeBox, dropbox::FakeDropbox, onedrive::FakeOneDrive};
use serde_json::{Value, json};

const OK: i32 = 0;
const AUTH: i32 = 3;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { dir: tempfile::tempdir().unwrap() }
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("csal.db")
    }
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_csal"));
        c.current_dir(self.dir.path())
            .env_remove("CSAL_MASTER_KEY")
            .env_remove("RUST_LOG")
            .env("CSAL_CATALOG", self.db())
            .args(args);
        c
    }
    fn run(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.command(args).output().unwrap();
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(out.status.code(), Some(code), "csal {args:?}\nstdout: {stdout}\nstderr: {stderr}");
        (stdout, stderr)
    }
    fn add(&self, name: &str, provider: &str, config: Value) {
        self.run(&["module", "add", name, "--provider", provider, "--config", &config.to_string()], OK);
    }
    /// Start `csal module authorize NAME` and read the URL it prints.
    async fn start_authorize(&self, name: &str) -> (Child, String) {
        let mut child = self
            .command(&["module", "authorize", name, "--timeout", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (url, rest) = tokio::task::spawn_blocking(move || {
            let mut lines = BufReader::new(stdout).lines();
            let url = lines
                .by_ref()
                .map(Result::unwrap)
                .find_map(|l| l.trim().starts_with("http").then(|| l.trim().to_owned()))
                .expect("an authorize URL on stdout");
            (url, lines)
        })
        .await
        .unwrap();
        // Keep draining stdout on a thread, so the child never blocks on a full pipe.
        let collected = std::thread::spawn(move || rest.map(Result::unwrap).collect::<Vec<_>>().join("\n"));
        STDOUT_TAILS.lock().unwrap().push((child.id(), collected));
        (child, url)
    }
}

type Tail = (u32, std::thread::JoinHandle<String>);
static STDOUT_TAILS: std::sync::Mutex<Vec<Tail>> = std::sync::Mutex::new(Vec::new());

/// Wait for the child; its exit code, the rest of its stdout, and its stderr.
async fn finish(mut child: Child) -> (i32, String, String) {
    let id = child.id();
    tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        let tail = {
            let mut tails = STDOUT_TAILS.lock().unwrap();
            let i = tails.iter().position(|(pid, _)| *pid == id).unwrap();
            tails.remove(i).1
        };
        (status.code().unwrap_or(-1), tail.join().unwrap(), stderr)
    })
    .await
    .unwrap()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

fn onedrive_config(fake: &FakeOneDrive) -> Value {
    json!({
        "client_id": csal_fakes::onedrive::CLIENT_ID,
        "client_secret": csal_fakes::onedrive::CLIENT_SECRET,
        "graph_url": fake.graph_url(),
        "token_url": fake.token_url(),
    })
}

/// The catalog's files (SQLite and its WAL) as bytes, to look for clear text.
fn catalog_bytes(env: &Env) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(env.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("csal.db") {
            all.extend(std::fs::read(p).unwrap());
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_stores_encrypted_tokens_and_the_module_then_passes_its_test() {
    let fake = FakeOneDrive::start().await;
    let env = Env::new();
    // A module without tokens can be added; it says how to authorise it.
    env.add("od", "onedrive", onedrive_config(&fake));
    let (out, err) = env.run(&["module", "test", "od"], AUTH);
    let all = format!("{out}{err}");
    assert!(all.contains("not authorised yet") && all.contains("csal module authorize od"), "{all}");

    let (child, url) = env.start_authorize("od").await;
    let q = query_of(&url);
    assert_eq!(q["client_id"], csal_fakes::onedrive::CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["redirect_uri"].starts_with("http://127.0.0.1:") && q["redirect_uri"].ends_with("/callback"));
    assert!(q["scope"].contains("offline_access"));
    let page = browser().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("is authorised"));
    let (code, out, err) = finish(child).await;
    assert_eq!(code, OK, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("authorised module 'od'") && out.contains("test: ok"), "{out}");
    assert!(out.contains("refresh token expires at"), "{out}");
    assert_eq!(fake.code_exchanges(), 1);

    // Tokens are never printed, and are stored encrypted.
    assert!(!out.contains("fake-graph-access-") && !err.contains("fake-graph-access-"));
    let bytes = catalog_bytes(&env);
    assert!(!contains(&bytes, "fake-graph-access-") && !contains(&bytes, "fake-onedrive-refresh-"));
    let (shown, _) = env.run(&["--json", "module", "show", "od"], OK);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["config"]["refresh_token"], "********");
    assert_eq!(shown["config"]["access_token"], "********");
    let expires = shown["config"]["refresh_token_expires_at"].as_str().unwrap();
    let at = humantime::parse_rfc3339(expires).unwrap();
    let days = at.duration_since(std::time::SystemTime::now()).unwrap().as_secs() / 86_400;
    assert!((88..=90).contains(&days), "{expires}");

    // A later process uses the saved tokens.
    env.run(&["module", "test", "od"], OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropbox_instance_is_authorised_with_offline_access() {
    let fake = FakeDropbox::start().await;
    let env = Env::new();
    env.add(
        "dbx",
        "dropbox",
        json!({
            "app_key": csal_fakes::dropbox::APP_KEY,
            "app_secret": csal_fakes::dropbox::APP_SECRET,
            "api_url": fake.base_url(),
            "content_url": fake.base_url(),
            "token_url": fake.token_url(),
        }),
    );
    let (child, url) = env.start_authorize("dbx").await;
    assert_eq!(query_of(&url)["token_access_type"], "offline");
    assert!(url.starts_with(&fake.authorize_url()), "{url}");
    browser().get(&url).send().await.unwrap();
    let (code, out, err) = finish(child).await;
    assert_eq!(code, OK, "stdout: {out}\nstderr: {err}");
    // The refresh token works after the access token expires.
    fake.expire_access_tokens();
    env.run(&["module", "test", "dbx"], OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn box_instance_is_authorised_and_its_single_use_refresh_token_rotates() {
    let fake = FakeBox::start().await;
    let env = Env::new();
    env.add(
        "bx",
        "box",
        json!({
            "client_id": csal_fakes::boxapi::CLIENT_ID,
            "client_secret": csal_fakes::boxapi::CLIENT_SECRET,
            "api_url": fake.api_url(),
            "upload_url": fake.upload_url(),
            "token_url": fake.token_url(),
        }),
    );
    // Before authorising, the instance loads but its Test says what to do.
    let (_, err) = env.run(&["module", "test", "bx"], AUTH);
    assert!(err.contains("not authorised yet: run `csal module authorize bx`"), "{err}");
    let (child, url) = env.start_authorize("bx").await;
    assert!(url.starts_with(&fake.authorize_url()), "{url}");
    browser().get(&url).send().await.unwrap();
    let (code, out, err) = finish(child).await;
    assert_eq!(code, OK, "stdout: {out}\nstderr: {err}");
    // Expired access token: the saved refresh token is spent and replaced.
    fake.expire_access_tokens();
    env.run(&["module", "test", "bx"], OK);
    fake.expire_access_tokens();
    env.run(&["module", "test", "bx"], OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_at_the_provider_is_reported_as_an_auth_error() {
    let fake = FakeOneDrive::start().await;
    fake.deny_authorization(true);
    let env = Env::new();
    env.add("od", "onedrive", onedrive_config(&fake));
    let (child, url) = env.start_authorize("od").await;
    let page = browser().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 400);
    let (code, out, err) = finish(child).await;
    assert_eq!(code, AUTH, "stdout: {out}\nstderr: {err}");
    assert!(err.contains("access_denied") && err.contains("refused"), "{err}");
    assert_eq!(fake.code_exchanges(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_with_the_wrong_state_is_rejected() {
    let fake = FakeOneDrive::start().await;
    let env = Env::new();
    env.add("od", "onedrive", onedrive_config(&fake));
    let (child, url) = env.start_authorize("od").await;
    // A real code, delivered with a forged state.
    let to_callback = no_redirects().get(&url).send().await.unwrap();
    let location = to_callback.headers()["location"].to_str().unwrap().to_owned();
    let mut forged = url::Url::parse(&location).unwrap();
    let code = query_of(&location)["code"].clone();
    forged.set_query(Some(&format!("code={code}&state=forged")));
    let page = browser().get(forged).send().await.unwrap();
    assert_eq!(page.status(), 400);
    let (exit, out, err) = finish(child).await;
    assert_eq!(exit, AUTH, "stdout: {out}\nstderr: {err}");
    assert!(err.contains("state does not match"), "{err}");
    assert_eq!(fake.code_exchanges(), 0, "no exchange with a forged state");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_code_used_twice_is_refused_by_the_provider_and_reported_as_auth() {
    let fake = FakeOneDrive::start().await;
    let env = Env::new();
    env.add("od", "onedrive", onedrive_config(&fake));
    // First run: capture the code on its way to the listener, then deliver it.
    let (first, url) = env.start_authorize("od").await;
    let location = no_redirects().get(&url).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let used_code = query_of(&location)["code"].clone();
    assert_eq!(browser().get(&location).send().await.unwrap().status(), 200);
    assert_eq!(finish(first).await.0, OK);
    // Second run: the old code replayed with the new run's state.
    let (second, url) = env.start_authorize("od").await;
    let q = query_of(&url);
    let mut replay = url::Url::parse(&q["redirect_uri"]).unwrap();
    replay.query_pairs_mut().append_pair("code", &used_code).append_pair("state", &q["state"]);
    assert_eq!(browser().get(replay).send().await.unwrap().status(), 400);
    let (exit, out, err) = finish(second).await;
    assert_eq!(exit, AUTH, "stdout: {out}\nstderr: {err}");
    assert!(err.contains("invalid_grant") && err.contains("start the authorization again"), "{err}");
    assert_eq!(fake.code_exchanges(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn authorizing_a_module_without_oauth_is_a_usage_error() {
    let env = Env::new();
    let root = env.dir.path().join("data");
    env.add("local", "local_fs", json!({"root": root}));
    let (_, err) = env.run(&["module", "authorize", "local"], 2);
    assert!(err.contains("does not use OAuth"), "{err}");
}
