//! `csal --json ls` streams NDJSON page by page: the first object is printed
//! while the provider still holds back its last page. The provider is gcs
//! against a loopback stub of the JSON API's `objects.list` whose second
//! page is answered only when the test says so.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[derive(Clone)]
struct Stub {
    /// Pages answered so far.
    served: Arc<AtomicUsize>,
    /// Holds the second page until the test adds a permit.
    gate: Arc<Semaphore>,
}

#[derive(serde::Deserialize)]
struct ListQuery {
    #[serde(rename = "pageToken")]
    page_token: Option<String>,
}

fn items(names: &[&str]) -> Value {
    names.iter().map(|n| json!({"name": n, "size": "3", "updated": "2026-01-01T00:00:00Z"})).collect()
}

async fn list(State(stub): State<Stub>, Query(q): Query<ListQuery>) -> axum::Json<Value> {
    let page = match q.page_token.as_deref() {
        None => json!({"items": items(&["cam/a0.ts", "cam/a1.ts"]), "nextPageToken": "p2"}),
        Some(_) => {
            stub.gate.acquire().await.expect("gate open").forget();
            json!({"items": items(&["cam/b0.ts", "cam/b1.ts", "cam/b2.ts"])})
        }
    };
    stub.served.fetch_add(1, Ordering::SeqCst);
    axum::Json(page)
}

/// The `csal` process, killed if the test fails while it waits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn csal(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_csal"));
    c.current_dir(dir)
        .env_remove("CSAL_MASTER_KEY")
        .env_remove("RUST_LOG")
        .env("CSAL_CATALOG", dir.join("csal.db"))
        .args(args);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn json_ls_prints_the_first_page_before_the_provider_serves_the_last() {
    let stub = Stub { served: Arc::default(), gate: Arc::new(Semaphore::new(0)) };
    let app = axum::Router::new().route("/storage/v1/b/{bucket}/o", get(list)).with_state(stub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let config = json!({"bucket": "recordings", "anonymous": true, "endpoint": url}).to_string();
    let added = csal(dir.path(), &["module", "add", "g", "--provider", "gcs", "--config", &config]).output().unwrap();
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));

    let mut child = KillOnDrop(csal(dir.path(), &["--json", "ls", "g"]).stdout(Stdio::piped()).spawn().unwrap());
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let (first, mut lines) =
        tokio::time::timeout(Duration::from_secs(60), tokio::task::spawn_blocking(move || (lines.next(), lines)))
            .await
            .expect("the first line came while the last page was held back")
            .unwrap();
    let first: Value = serde_json::from_str(&first.unwrap().unwrap()).unwrap();
    assert_eq!(first["object_id"], "cam/a0.ts");
    assert_eq!(stub.served.load(Ordering::SeqCst), 1, "only the first page was served");

    stub.gate.add_permits(1);
    let rest: Vec<Value> = tokio::task::spawn_blocking(move || {
        lines.by_ref().map(|l| serde_json::from_str(&l.unwrap()).expect("one JSON object per line")).collect()
    })
    .await
    .unwrap();
    let ids: Vec<&str> = rest.iter().map(|v| v["object_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["cam/a1.ts", "cam/b0.ts", "cam/b1.ts", "cam/b2.ts"]);
    assert!(child.0.wait().unwrap().success());
    assert_eq!(stub.served.load(Ordering::SeqCst), 2);
}
