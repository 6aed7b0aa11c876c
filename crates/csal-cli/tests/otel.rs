//! The `otel` feature: `csal --otlp-endpoint URL put` sends its spans as
//! OTLP/HTTP protobuf to a loopback receiver this test runs, and the layer's
//! span carries module, provider, operation and bytes (a failed one its
//! error kind).
#![cfg(feature = "otel")]

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;

/// What the receiver got: (content type, body) per request.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn traces(State(got): State<Received>, headers: HeaderMap, body: Bytes) -> &'static str {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    got.lock().unwrap().push((content_type, body.to_vec()));
    ""
}

fn csal(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_csal"))
        .current_dir(dir)
        .env_remove("CSAL_MASTER_KEY")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("CSAL_CATALOG", dir.join("csal.db"))
        .args(args)
        .output()
        .unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn put_exports_its_span_over_otlp_http() {
    let got = Received::default();
    let app = axum::Router::new().route("/v1/traces", post(traces)).with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (out, failed) = tokio::task::spawn_blocking(move || {
        let root = path.join("data");
        let config = serde_json::json!({ "root": root }).to_string();
        let added = csal(&path, &["module", "add", "local", "--provider", "local_fs", "--config", &config]);
        assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
        std::fs::write(path.join("clip.ts"), b"0123456789").unwrap();
        let put = csal(&path, &["--otlp-endpoint", &endpoint, "put", "local", "clip.ts"]);
        let stat = csal(&path, &["--otlp-endpoint", &endpoint, "stat", "local", "missing.ts"]);
        (put, stat)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(failed.status.code(), Some(4), "{}", String::from_utf8_lossy(&failed.stderr));

    // The process flushed its traces before exiting: they are here now.
    let got = got.lock().unwrap();
    assert!(!got.is_empty(), "no POST /v1/traces arrived");
    assert!(
        got.iter().all(|(ct, _)| ct == "application/x-protobuf"),
        "{:?}",
        got.iter().map(|g| &g.0).collect::<Vec<_>>()
    );
    let put = got
        .iter()
        .map(|(_, body)| body)
        .find(|body| contains(body, "csal") && contains(body, "operation") && contains(body, "write"))
        .expect("a span of the write arrived");
    for field in ["module", "local", "provider", "local_fs", "bytes", "service.name"] {
        assert!(contains(put, field), "the span lacks {field}");
    }
    // The failed stat's span says why.
    assert!(
        got.iter()
            .any(|(_, body)| contains(body, "stat") && contains(body, "error_kind") && contains(body, "not_found")),
        "no span of the failed stat with its error kind"
    );
}
