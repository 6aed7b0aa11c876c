//! A local fake of Nextcloud's chunked upload v2 endpoints, in front of a
//! real WebDAV server (wsgidav, which `cargo xtask` mounts at Nextcloud's
//! paths `/remote.php/dav/files/<user>` and `/remote.php/dav/uploads/<user>`).
//!
//! Written from Nextcloud's developer manual, "Client APIs → WebDAV →
//! Chunked file upload" (v2):
//! - `MKCOL /remote.php/dav/uploads/<user>/<transfer-id>` with a
//!   `Destination` header naming the final file;
//! - `PUT .../<transfer-id>/<n>` for chunks numbered 1..=10000, each with
//!   the same `Destination` header;
//! - `MOVE .../<transfer-id>/.file` with `Destination` (and optionally
//!   `OC-Total-Length`) assembles the chunks in order into the destination
//!   and removes the upload folder.
//!
//! A generic WebDAV server cannot do the last step, so this fake does it:
//! it streams the chunks from the upstream server, in numeric order, into
//! one PUT of the destination. Every other request is forwarded unchanged
//! (the `Destination` header rewritten to the upstream host), so files,
//! listings, ranges and auth are the real server's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use futures::{StreamExt, TryStreamExt};

#[derive(Default)]
pub struct Counters {
    pub chunks: AtomicUsize,
    pub assembled: AtomicUsize,
}

struct Shared {
    upstream: String,
    own: String,
    http: reqwest::Client,
    counters: Arc<Counters>,
}

pub struct FakeNextcloud {
    pub url: String,
    pub counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeNextcloud {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start the fake on 127.0.0.1 (a free port) in front of `upstream`
/// (`http://127.0.0.1:8081`, no trailing slash).
pub async fn start(upstream: &str) -> FakeNextcloud {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let own = format!("http://{}", listener.local_addr().expect("addr"));
    let counters = Arc::new(Counters::default());
    let shared = Arc::new(Shared {
        upstream: upstream.trim_end_matches('/').to_owned(),
        own: own.clone(),
        http: reqwest::Client::new(),
        counters: counters.clone(),
    });
    let app = axum::Router::new().fallback(handle).with_state(shared);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FakeNextcloud { url: own, counters, task }
}

fn status(code: StatusCode, text: &str) -> Response {
    Response::builder().status(code).body(Body::from(text.to_owned())).expect("response")
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if path.starts_with("/remote.php/dav/uploads/") {
        let dest = req.headers().get("destination").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let upload_write = method.as_str() == "MKCOL" || method == Method::PUT || method.as_str() == "MOVE";
        if upload_write && dest.is_none() {
            return status(StatusCode::BAD_REQUEST, "chunked upload v2 needs a Destination header");
        }
        if method == Method::PUT {
            let n = path.rsplit('/').next().and_then(|n| n.parse::<u32>().ok());
            if !n.is_some_and(|n| (1..=10_000).contains(&n)) {
                return status(StatusCode::BAD_REQUEST, "chunk names are numbers 1..=10000");
            }
            s.counters.chunks.fetch_add(1, Ordering::Relaxed);
        }
        if method.as_str() == "MOVE" && path.ends_with("/.file") {
            return assemble(&s, &path, req.headers(), &dest.expect("checked")).await;
        }
    }
    forward(&s, req).await
}

/// `dest` on the upstream server: its scheme and host (this fake's, or a TLS
/// proxy's in front of it) replaced by the upstream's.
fn rewrite_dest(s: &Shared, dest: &str) -> String {
    let path = dest.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]));
    match path {
        Some(path) if dest.starts_with(&s.own) || dest.starts_with("https://127.0.0.1:") => {
            format!("{}{path}", s.upstream)
        }
        _ => dest.to_owned(),
    }
}

async fn forward(s: &Shared, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let url = format!("{}{}", s.upstream, parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).expect("method");
    let mut out = s.http.request(method, url);
    for (k, v) in &parts.headers {
        match k.as_str() {
            "host" | "connection" | "transfer-encoding" => {}
            "destination" => out = out.header("destination", rewrite_dest(s, v.to_str().unwrap_or(""))),
            _ => out = out.header(k.as_str(), v.as_bytes()),
        }
    }
    let has_body = parts.headers.contains_key("content-length") || parts.headers.contains_key("transfer-encoding");
    if has_body {
        out = out.body(reqwest::Body::wrap_stream(body.into_data_stream().map_err(std::io::Error::other)));
    }
    let resp = match out.send().await {
        Ok(r) => r,
        Err(e) => return status(StatusCode::BAD_GATEWAY, &format!("upstream failed: {e:?}")),
    };
    let mut builder = Response::builder().status(resp.status().as_u16());
    for (k, v) in resp.headers() {
        if !matches!(k.as_str(), "connection" | "transfer-encoding") {
            builder = builder.header(k.as_str(), v.as_bytes());
        }
    }
    builder.body(Body::from_stream(resp.bytes_stream())).expect("response")
}

/// `MOVE .../<transfer>/.file`: stream the numbered chunks into the destination.
async fn assemble(s: &Shared, path: &str, headers: &HeaderMap, dest: &str) -> Response {
    let folder = path.trim_end_matches(".file");
    let auth = headers.get("authorization").map(|v| v.as_bytes().to_vec()).unwrap_or_default();
    let with_auth = |r: reqwest::RequestBuilder| r.header("authorization", auth.clone());
    let listing =
        with_auth(s.http.request(reqwest::Method::from_bytes(b"PROPFIND").unwrap(), format!("{}{folder}", s.upstream)))
            .header("depth", "1")
            .send()
            .await;
    let Ok(listing) = listing else { return status(StatusCode::BAD_GATEWAY, "upstream failed") };
    if listing.status().as_u16() != 207 {
        return status(StatusCode::from_u16(listing.status().as_u16()).unwrap(), "no such upload");
    }
    let text = listing.text().await.unwrap_or_default();
    let mut numbers: Vec<u32> = hrefs(&text)
        .iter()
        .filter_map(|h| h.trim_end_matches('/').rsplit('/').next().and_then(|n| n.parse().ok()))
        .collect();
    numbers.sort_unstable();
    if numbers.is_empty() || numbers.iter().enumerate().any(|(i, n)| *n != i as u32 + 1) {
        return status(StatusCode::BAD_REQUEST, "chunks are not numbered 1..N");
    }
    let target = rewrite_dest(s, dest);
    let overwrite = headers.get("overwrite").and_then(|v| v.to_str().ok()).unwrap_or("T");
    if overwrite.eq_ignore_ascii_case("F") {
        let head = with_auth(s.http.head(&target)).send().await;
        if head.is_ok_and(|h| h.status().is_success()) {
            return status(StatusCode::PRECONDITION_FAILED, "destination exists");
        }
    }
    let (http, upstream, folder_owned, auth2) = (s.http.clone(), s.upstream.clone(), folder.to_owned(), auth.clone());
    let body = futures::stream::iter(numbers)
        .then(move |n| {
            let req = http.get(format!("{upstream}{folder_owned}{n}")).header("authorization", auth2.clone());
            async move {
                req.send().await.map(|r| r.bytes_stream().map_err(std::io::Error::other)).map_err(std::io::Error::other)
            }
        })
        .try_flatten();
    let put = with_auth(s.http.put(&target)).body(reqwest::Body::wrap_stream(body)).send().await;
    let Ok(put) = put else { return status(StatusCode::BAD_GATEWAY, "assembly failed") };
    if !put.status().is_success() {
        return status(StatusCode::from_u16(put.status().as_u16()).unwrap(), "assembly refused");
    }
    if let Some(total) =
        headers.get("oc-total-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok())
    {
        let head = with_auth(s.http.head(&target)).send().await.ok();
        // (reqwest's content_length() is the body's, empty for HEAD: read the header.)
        let size = head.as_ref().and_then(|r| r.headers().get("content-length")?.to_str().ok()?.parse::<u64>().ok());
        if size != Some(total) {
            let _ = with_auth(s.http.delete(&target)).send().await;
            return status(StatusCode::BAD_REQUEST, "assembled size differs from OC-Total-Length");
        }
    }
    let _ = with_auth(s.http.delete(format!("{}{folder}", s.upstream))).send().await;
    s.counters.assembled.fetch_add(1, Ordering::Relaxed);
    status(StatusCode::CREATED, "")
}

/// The `<…:href>` values of a multistatus document.
fn hrefs(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find("href>") {
        let after = &rest[i + 5..];
        let Some(end) = after.find('<') else { break };
        if !after[..end].trim().is_empty() {
            out.push(after[..end].trim().to_owned());
        }
        rest = &after[end..];
    }
    out
}
