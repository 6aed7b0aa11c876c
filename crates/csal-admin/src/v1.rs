//! The recording API (`/v1/`): recorders PUT segments and playlists,
//! players and tools read the index and play back. Scopes: `PUT` needs an
//! `ingest` (or `admin`) token, `GET`/`HEAD` a `read` (or `admin`) token or
//! a logged-in session (see [`crate::auth::needed_scope`]).
//!
//! | method | path | what |
//! |---|---|---|
//! | PUT | /v1/cameras/{camera}/segments/{name} | store a segment (streamed; `?ack=spool\|delivered\|copies`) |
//! | PUT | /v1/cameras/{camera}/{playlist}.m3u8 | date segments from a live HLS playlist (not stored) |
//! | GET, HEAD | /v1/cameras/{camera}/segments/{name} | play a segment back (`Range` → 206) |
//! | GET | /v1/cameras/{camera}/segments | the index: `?from=&to=` (RFC 3339), `limit`, `after` |
//! | GET | /v1/cameras/{camera}/playlist.m3u8 | an HLS VOD playlist of `?from=&to=` (default: everything) |
//! | GET | /v1/cameras | cameras with counts, bytes, oldest/newest and undelivered |
//! | GET | /v1/spool | this node's spool and delivery counters |
//!
//! Errors are JSON `{"error": {"kind", "message"}}`.

// Handlers answer early with a ready `Response` as their error (a cold path;
// boxing it would only add noise to every `?`).
#![allow(clippy::result_large_err)]

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use csal_catalog::{SegmentQuery, SegmentRecord};
use csal_core::{ByteRange, ByteStream, ErrorKind, StorageError};
use csal_spool::{Gateway, IngestError, IngestOutcome, IngestRequest};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::AdminState;

/// The recording API's routes (`/v1/`).
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/v1/cameras", get(cameras))
        .route("/v1/spool", get(spool))
        .route("/v1/cameras/{camera}/segments", get(list_segments))
        .route("/v1/cameras/{camera}/segments/{name}", get(get_segment).put(put_segment))
        .route("/v1/cameras/{camera}/{file}", get(get_file).put(put_file))
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"kind": kind, "message": message}}))).into_response()
}

fn storage_error(e: &StorageError) -> Response {
    let status = match e.kind() {
        ErrorKind::InvalidInput | ErrorKind::Integrity => StatusCode::BAD_REQUEST,
        ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        _ => crate::status::status_for(e),
    };
    let mut resp = error(status, e.kind().as_str(), &e.to_string());
    if let Some(after) = e.retry_after() {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
    }
    resp
}

fn gateway(state: &AdminState) -> Result<&Gateway, Response> {
    state.gateway.as_ref().ok_or_else(|| {
        error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "this server runs without the recording gateway")
    })
}

/// Unix milliseconds as RFC 3339 (UTC, milliseconds).
pub fn ms_to_rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// An optional RFC 3339 time parameter as Unix milliseconds.
pub fn parse_time_param(what: &str, text: Option<&str>) -> Result<Option<i64>, StorageError> {
    match text.filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => {
            csal_core::time_format::parse_rfc3339(t).map(|at| Some(csal_catalog::time_to_ms(at))).ok_or_else(|| {
                let shown: String = t.chars().take(40).collect();
                StorageError::invalid_input(format!("'{what}' must be an RFC 3339 time, not '{shown}'"))
            })
        }
    }
}

fn parse_time(what: &str, text: Option<&str>) -> Result<Option<i64>, Response> {
    parse_time_param(what, text).map_err(|e| bad(e.message().to_owned()))
}

/// A segment as JSON.
pub fn segment_json(s: &SegmentRecord) -> Value {
    let state = match (s.is_delivered(), s.copies_stored) {
        (true, _) => "delivered",
        (false, 0) => "spooled",
        (false, _) => "partly_delivered",
    };
    json!({
        "id": s.id,
        "camera_id": s.camera_id,
        "name": s.name,
        "start": ms_to_rfc3339(s.start_ms),
        "end": ms_to_rfc3339(s.end_ms),
        "duration_s": s.duration_ms.map(|d| d as f64 / 1000.0),
        "time_source": s.time_source,
        "size": s.size,
        "crc32c": s.crc32c,
        "content_type": s.content_type,
        "state": state,
        "copies_stored": s.copies_stored,
        "copies_required": s.copies_required,
        "url": format!("/v1/cameras/{}/segments/{}", s.camera_id, s.name),
    })
}

// ------------------------------------------------------------------ ingest

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PutQuery {
    /// `spool` (default), `delivered` or `copies`.
    ack: Option<String>,
    /// Seconds to wait for `delivered` / `copies` (default 30, at most 600).
    ack_timeout: Option<u64>,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn bad(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_input", &message)
}

/// The recorder's headers as an [`IngestRequest`].
fn ingest_request(camera: String, name: String, headers: &HeaderMap) -> Result<IngestRequest, Response> {
    let mut req = IngestRequest::new(camera, name);
    req.content_type =
        header_str(headers, "content-type").filter(|c| !c.is_empty()).map(|c| c.chars().take(200).collect());
    req.start = parse_time("X-Csal-Start", header_str(headers, "x-csal-start"))?
        .map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64));
    if let Some(d) = header_str(headers, "x-csal-duration") {
        let seconds: f64 = d.parse().map_err(|_| bad(format!("X-Csal-Duration must be seconds, not '{d:.40}'")))?;
        if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
            return Err(bad("X-Csal-Duration must be 0 to 86400 seconds".into()));
        }
        req.duration = Some(Duration::from_secs_f64(seconds));
    }
    if let Some(c) = header_str(headers, "x-csal-checksum-crc32c") {
        let parsed = (c.len() == 8).then(|| u32::from_str_radix(c, 16).ok()).flatten();
        req.expected_crc32c = Some(parsed.ok_or_else(|| bad("X-Csal-Checksum-Crc32c must be 8 hex digits".into()))?);
    }
    if let Some(len) = header_str(headers, "content-length") {
        req.content_length = Some(len.parse().map_err(|_| bad("bad Content-Length".into()))?);
    }
    Ok(req)
}

/// An HTTP body as a one-shot [`ByteStream`].
fn body_stream(body: Body) -> ByteStream {
    let stream = body
        .into_data_stream()
        .map(|r| r.map_err(|e| StorageError::new(ErrorKind::Transient, "the upload connection broke").with_source(e)));
    ByteStream::new(stream, None)
}

fn ingest_error(e: &IngestError) -> Response {
    let message = e.to_string();
    match e {
        IngestError::Invalid(_) | IngestError::BodyBroken(_) => error(StatusCode::BAD_REQUEST, e.reason(), &message),
        IngestError::NoPolicy(_) => error(StatusCode::NOT_FOUND, e.reason(), &message),
        IngestError::Conflict(_) => error(StatusCode::CONFLICT, e.reason(), &message),
        IngestError::TooLarge { .. } => error(StatusCode::PAYLOAD_TOO_LARGE, e.reason(), &message),
        IngestError::Stalled(_) => error(StatusCode::REQUEST_TIMEOUT, e.reason(), &message),
        IngestError::Unavailable(_) => error(StatusCode::SERVICE_UNAVAILABLE, e.reason(), &message),
        IngestError::SpoolFull { retry_after, .. } => {
            let mut resp = error(StatusCode::INSUFFICIENT_STORAGE, e.reason(), &message);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
            resp
        }
    }
}

async fn put_segment(
    State(state): State<AdminState>,
    Path((camera, name)): Path<(String, String)>,
    query: Result<Query<PutQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let gw = match gateway(&state) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Ok(Query(query)) = query else {
        return bad("unknown query parameter: use ack=spool|delivered|copies and ack_timeout=SECONDS".into());
    };
    let wait_for = match query.ack.as_deref().unwrap_or("spool") {
        "spool" => None,
        "delivered" => Some(false),
        "copies" => Some(true),
        other => return bad(format!("ack must be spool, delivered or copies, not '{other:.20}'")),
    };
    let timeout = Duration::from_secs(query.ack_timeout.unwrap_or(30).min(600));
    let req = match ingest_request(camera, name, &headers) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    // In a task of its own: a recorder that closes its connection once the
    // body is sent (ffmpeg does, without reading the answer) must not
    // cancel the commit of a segment it sent completely.
    let ingest = {
        let gw = gw.clone();
        tokio::spawn(async move { gw.ingest(req, body_stream(body)).await })
    };
    let outcome = match ingest.await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            tracing::info!(reason = e.reason(), error = %e, "segment refused");
            return ingest_error(&e);
        }
        Err(_) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the upload task failed"),
    };
    let status = match &outcome {
        IngestOutcome::Created(_) => StatusCode::CREATED,
        IngestOutcome::Identical(_) => StatusCode::OK,
    };
    let mut record = outcome.record().clone();
    if let Some(all) = wait_for {
        let copies = if all { record.copies_required } else { 1 };
        match gw.wait_for_copies(&record.id, copies, timeout).await {
            Ok(Ok(r)) => record = r,
            Ok(Err(r)) => {
                let mut body = segment_json(&r);
                body["error"] = json!({"kind": "timeout", "message": format!(
                    "stored in the spool, but not on {copies} target(s) within {} s; delivery goes on — repeat \
                     the same PUT to wait again (an identical upload is not stored twice)", timeout.as_secs())});
                return (StatusCode::GATEWAY_TIMEOUT, Json(body)).into_response();
            }
            Err(e) => return storage_error(&e),
        }
    }
    let location = format!("/v1/cameras/{}/segments/{}", record.camera_id, record.name);
    let mut resp = (status, Json(segment_json(&record))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

async fn put_file(
    State(state): State<AdminState>,
    Path((camera, file)): Path<(String, String)>,
    body: Body,
) -> Response {
    let gw = match gateway(&state) {
        Ok(g) => g,
        Err(r) => return r,
    };
    if !file.ends_with(".m3u8") {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "PUT segments to /v1/cameras/{camera}/segments/{name}, playlists to /v1/cameras/{camera}/{name}.m3u8",
        );
    }
    let limit = csal_spool::hls::MAX_PLAYLIST_BYTES;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", &format!("playlist larger than {limit} bytes"));
        }
    };
    let Ok(text) = String::from_utf8(bytes.to_vec()) else { return bad("the playlist is not UTF-8".into()) };
    // Detached, like segments: the recorder may already have hung up.
    let apply = {
        let gw = gw.clone();
        tokio::spawn(async move { gw.apply_playlist(&camera, &text).await })
    };
    match apply.await {
        Ok(Ok(outcome)) => (StatusCode::OK, Json(json!(outcome))).into_response(),
        Ok(Err(e)) => storage_error(&e),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the playlist task failed"),
    }
}

// ---------------------------------------------------------------- playback

/// `Range: bytes=...` as a [`ByteRange`]; `None` for none, several ranges
/// (answered in full, as RFC 9110 allows) or a unit other than bytes.
fn parse_range(headers: &HeaderMap) -> Result<Option<ByteRange>, Response> {
    let Some(text) = header_str(headers, "range") else { return Ok(None) };
    let Some(spec) = text.strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    ByteRange::parse(spec)
        .map(Some)
        .map_err(|e| error(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable", e.message()))
}

async fn get_segment(
    State(state): State<AdminState>,
    Path((camera, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let gw = match gateway(&state) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let range = match parse_range(&headers) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if method == Method::HEAD {
        // From the index alone: no storage is touched.
        let record = match gw.segment(&camera, &name).await {
            Ok(r) => r,
            Err(e) => return storage_error(&e),
        };
        let span = match range.map(|r| r.resolve(record.size)).transpose() {
            Ok(s) => s,
            Err(e) => return range_error(&e, record.size),
        };
        let span = span.unwrap_or(0..record.size);
        return segment_response(&record, span, range.is_some(), Body::empty());
    }
    match gw.open_segment(&camera, &name, range).await {
        Ok(body) => {
            let stream = body.stream;
            segment_response(&body.record, body.span, range.is_some(), Body::from_stream(stream))
        }
        Err(e) if e.kind() == ErrorKind::RangeNotSatisfiable => match gw.segment(&camera, &name).await {
            Ok(r) => range_error(&e, r.size),
            Err(e) => storage_error(&e),
        },
        Err(e) => storage_error(&e),
    }
}

fn range_error(e: &StorageError, size: u64) -> Response {
    let mut resp = storage_error(e);
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp
}

fn segment_response(record: &SegmentRecord, span: std::ops::Range<u64>, ranged: bool, body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = if ranged { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let h = resp.headers_mut();
    let content_type = record.content_type.as_deref().unwrap_or("application/octet-stream");
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(span.end - span.start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", record.crc32c)) {
        h.insert(header::ETAG, v);
    }
    if ranged {
        let value = format!("bytes {}-{}/{}", span.start, span.end.saturating_sub(1), record.size);
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// VOD playlists up to this size are sent whole (about 100,000 segments).
const PLAYLIST_BUFFER: usize = 8 << 20;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct WindowQuery {
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
    after: Option<String>,
}

async fn get_file(
    State(state): State<AdminState>,
    Path((camera, file)): Path<(String, String)>,
    query: Result<Query<WindowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let gw = match gateway(&state) {
        Ok(g) => g,
        Err(r) => return r,
    };
    if file != "playlist.m3u8" {
        return error(StatusCode::NOT_FOUND, "not_found", "GET /v1/cameras/{camera}/playlist.m3u8 for playback");
    }
    let Ok(Query(q)) = query else { return bad("query parameters: from, to (RFC 3339)".into()) };
    let (from, to) = match (parse_time("from", q.from.as_deref()), parse_time("to", q.to.as_deref())) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let mut stream = match gw.vod_playlist(&camera, from, to).await {
        Ok(stream) => stream,
        Err(e) => return storage_error(&e),
    };
    // Up to PLAYLIST_BUFFER it is sent with a Content-Length (ffmpeg's HLS
    // reader reports an I/O error at the end of a chunked playlist); a
    // longer one streams on, chunked, so memory stays bounded.
    let mut head = String::new();
    let mut complete = false;
    while head.len() < PLAYLIST_BUFFER {
        match stream.next().await {
            Some(Ok(text)) => head.push_str(&text),
            Some(Err(e)) => return storage_error(&e),
            None => {
                complete = true;
                break;
            }
        }
    }
    let body = if complete {
        Body::from(head)
    } else {
        Body::from_stream(futures::stream::once(async move { Ok(head) }).chain(stream))
    };
    let mut resp = Response::new(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apple.mpegurl"));
    resp
}

async fn list_segments(
    State(state): State<AdminState>,
    Path(camera): Path<String>,
    query: Result<Query<WindowQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let gw = match gateway(&state) {
        Ok(g) => g,
        Err(r) => return r,
    };
    if let Err(e) = csal_spool::names::check_camera_id(&camera) {
        return storage_error(&e);
    }
    let Ok(Query(q)) = query else { return bad("query parameters: from, to (RFC 3339), limit, after".into()) };
    let (from_ms, to_ms) = match (parse_time("from", q.from.as_deref()), parse_time("to", q.to.as_deref())) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let after = match q.after.as_deref().map(parse_cursor) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => return bad("'after' must be the 'next' value of the previous page".into()),
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, csal_catalog::MAX_SEGMENT_PAGE);
    match gw.catalog().list_segments(&camera, &SegmentQuery { from_ms, to_ms, after, limit }).await {
        Ok(page) => {
            let next =
                (page.len() == limit as usize).then(|| page.last().map(|s| format!("{}~{}", s.start_ms, s.name)));
            Json(json!({
                "camera_id": camera,
                "segments": page.iter().map(segment_json).collect::<Vec<_>>(),
                "next": next.flatten(),
            }))
            .into_response()
        }
        Err(e) => storage_error(&e),
    }
}

/// `START_MS~NAME`, as the previous page's `next`.
fn parse_cursor(text: &str) -> Option<(i64, String)> {
    let (ms, name) = text.split_once('~')?;
    csal_spool::names::check_segment_name(name).ok()?;
    Some((ms.parse().ok()?, name.to_owned()))
}

/// Cameras with their index summary and policy (the JSON of `GET
/// /v1/cameras` and `csal cameras --json`).
pub async fn camera_list(catalog: &csal_catalog::Catalog) -> Result<Vec<Value>, StorageError> {
    let summaries = catalog.camera_summaries().await?;
    let policies = catalog.policies_in_effect().await?;
    let now = csal_catalog::time_to_ms(std::time::SystemTime::now());
    Ok(summaries
        .iter()
        .map(|s| {
            let applied = policies.iter().find(|a| a.camera_id == s.camera_id);
            json!({
                "camera_id": s.camera_id,
                "segments": s.segments,
                "bytes": s.bytes,
                "oldest": ms_to_rfc3339(s.oldest_start_ms),
                "newest": ms_to_rfc3339(s.newest_end_ms),
                "last_received": ms_to_rfc3339(s.last_received_ms),
                "undelivered": s.undelivered,
                "undelivered_bytes": s.undelivered_bytes,
                "oldest_undelivered_age_s": s.oldest_undelivered_ms.map(|t| (now - t).max(0) as f64 / 1000.0),
                "policy": applied.map(|a| json!({
                    "targets": a.policy.targets, "copies": a.policy.copies, "default": a.is_default,
                })),
            })
        })
        .collect())
}

async fn cameras(State(state): State<AdminState>) -> Response {
    match camera_list(&state.catalog).await {
        Ok(list) => Json(Value::Array(list)).into_response(),
        Err(e) => storage_error(&e),
    }
}

async fn spool(State(state): State<AdminState>) -> Response {
    match gateway(&state) {
        Ok(gw) => Json(json!({"node_id": gw.node_id(), "stats": gw.stats()})).into_response(),
        Err(r) => r,
    }
}
