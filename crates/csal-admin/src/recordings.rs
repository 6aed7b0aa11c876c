//! The Recordings pages: per camera, the last segment, the lag, what is
//! still undelivered and where it goes; this node's spool and deliveries.

use std::time::SystemTime;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use csal_catalog::{CameraSummary, SegmentQuery, time_to_ms};
use maud::{Markup, html};

use crate::AdminState;
use crate::auth::Caller;
use crate::views::{bytes, csrf_input, page, post_button, seg};

fn age(ms: i64, now: i64) -> String {
    let secs = ((now - ms).max(0) / 1000) as u64;
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    }
}

fn when(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string().replace('T', " ").replace('Z', " UTC")
}

fn error_view(caller: &Caller, e: &csal_core::StorageError) -> Response {
    let body = html! { h1 { "Recordings" } div class="flash bad" { (e.to_string()) } };
    (crate::status::status_for(e), page("Recordings", "recordings", caller.csrf(), body)).into_response()
}

/// Every target's capacity forecast from the last health round.
fn capacity_card(state: &AdminState) -> Markup {
    let Some(report) = state.capacity.latest() else { return html! {} };
    html! {
        div class="card" id="capacity" {
            h2 { "Capacity" }
            p class="muted" { "At the rate each target filled over the last day; a target full in fewer than "
                (report.horizon_days) " days turns degraded." }
            table {
                thead { tr { th { "Target" } th { "Stored" } th { "Copies" } th { "Per day" } th { "Free" } th { "Days left" } th { "Warning" } } }
                tbody {
                    @for t in &report.targets {
                        tr {
                            td { a href={ "/modules/" (seg(&t.target)) } { (t.target) } }
                            td class="num" { (bytes(t.stored_bytes)) }
                            td class="num" { (t.stored_copies) }
                            td class="num" { (bytes(t.bytes_per_day)) }
                            td class="num" { (t.free_bytes.map_or_else(|| "unknown".to_owned(), bytes)) }
                            td class="num" { (t.days_left.map_or_else(|| "–".to_owned(), |d| format!("{d:.1}"))) }
                            td class="reason" { (t.warning.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}

fn spool_card(state: &AdminState) -> Markup {
    let Some(gw) = &state.gateway else {
        return html! { div class="card muted" id="spool" { "This server runs without the recording gateway (no spool)." } };
    };
    let s = gw.stats();
    let pct = if s.spool_max_bytes > 0 { s.spool_bytes as f64 * 100.0 / s.spool_max_bytes as f64 } else { 0.0 };
    html! {
        div class="card" id="spool" {
            h2 { "This node's spool" }
            dl class="kv" {
                dt { "Node" } dd { code { (gw.node_id()) } }
                dt { "Spooled" } dd { (s.spool_segments) " segments, " (bytes(s.spool_bytes)) " of " (bytes(s.spool_max_bytes)) " (" (format!("{pct:.1}")) " %)" }
                dt { "Taken in" } dd { (s.ingest_segments) " segments, " (bytes(s.ingest_bytes)) " since start (" (s.ingest_duplicates) " identical retries)" }
                dt { "Refused" } dd {
                    @if s.ingest_refused.is_empty() { "none" }
                    @for (reason, n) in &s.ingest_refused { code { (reason) } " " (n) " " }
                }
            }
            @if !s.targets.is_empty() {
                table id="deliveries" {
                    thead { tr { th { "Target" } th { "Delivered" } th { "Bytes" } th { "Failures" } th { "Last error" } } }
                    tbody {
                        @for (target, t) in &s.targets {
                            tr {
                                td { a href={ "/modules/" (seg(target)) } { (target) } }
                                td class="num" { (t.delivered) }
                                td class="num" { (bytes(t.delivered_bytes)) }
                                td class="num" { (t.failures) }
                                td class="reason" { (t.last_error.clone().unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /recordings`: the cameras, the capacity forecast, this node's spool and the last reconciliation.
pub async fn index(State(state): State<AdminState>, Extension(caller): Extension<Caller>) -> Response {
    let summaries: Vec<CameraSummary> = match state.catalog.camera_summaries().await {
        Ok(s) => s,
        Err(e) => return error_view(&caller, &e),
    };
    let policies = state.catalog.policies_in_effect().await.unwrap_or_default();
    let now = time_to_ms(SystemTime::now());
    let fsck: Option<serde_json::Value> = state
        .catalog
        .get_setting(csal_spool::FSCK_REPORT_SETTING)
        .await
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_str(&t).ok());
    let body = html! {
        h1 { "Recordings" }
        (spool_card(&state))
        (capacity_card(&state))
        @if let Some(f) = &fsck {
            div class="card" id="fsck" {
                h2 { "Last reconciliation" }
                p { (f["at"].as_str().unwrap_or("?")) ": " (f["report"]["copies_checked"]) " copies checked, "
                    (f["report"]["findings"].as_array().map_or(0, Vec::len)) " finding(s)." }
                @if let Some(findings) = f["report"]["findings"].as_array().filter(|a| !a.is_empty()) {
                    table {
                        thead { tr { th { "Kind" } th { "Camera" } th { "Target" } th { "Segment / object" } th { "Repair" } } }
                        tbody { @for x in findings.iter().take(50) {
                            tr { td { (x["kind"].as_str().unwrap_or("")) } td { (x["camera"].as_str().unwrap_or("")) }
                                 td { (x["target"].as_str().unwrap_or("")) }
                                 td { (x["segment"].as_str().or(x["object_id"].as_str()).unwrap_or("")) }
                                 td class="reason" { (x["repaired"].as_str().unwrap_or("reported")) } }
                        } }
                    }
                }
            }
        }
        @if summaries.is_empty() {
            div class="card" { "No recordings yet. A recorder PUTs segments to " code { "/v1/cameras/{camera}/segments/{name}" } " with an ingest token." }
        } @else {
            table id="cameras" {
                thead { tr {
                    th { "Camera" } th { "Last segment" } th { "Lag" } th { "Segments" } th { "Stored" }
                    th { "Undelivered" } th { "Oldest undelivered" } th { "Targets" }
                } }
                tbody {
                    @for s in &summaries {
                        @let applied = policies.iter().find(|a| a.camera_id == s.camera_id);
                        @let policy = applied.map(|a| &a.policy);
                        tr {
                            td { a href={ "/recordings/" (seg(&s.camera_id)) } { (s.camera_id) } }
                            td { (when(s.newest_end_ms)) }
                            td class="num" { (age(s.last_received_ms, now)) }
                            td class="num" { (s.segments) }
                            td class="num" { (bytes(s.bytes)) }
                            td class="num" {
                                @if s.undelivered == 0 { span class="badge st-ok" { "0" } }
                                @else { span class="badge st-degraded" { (s.undelivered) } " " (bytes(s.undelivered_bytes)) }
                            }
                            td class="num" { (s.oldest_undelivered_ms.map(|t| age(t, now)).unwrap_or_else(|| "–".into())) }
                            td {
                                @match policy {
                                    Some(p) => {
                                        @for (n, t) in p.targets.iter().enumerate() { @if n > 0 { " → " } code { (t) } }
                                        " " span class="tag" { (p.copies) " cop" (if p.copies == 1 { "y" } else { "ies" }) }
                                        @if applied.is_some_and(|a| a.is_default) { " " span class="tag" title="the camera has no policy of its own" { "default" } }
                                    }
                                    None => span class="reason" { "no policy" },
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page("Recordings", "recordings", caller.csrf(), body).into_response()
}

/// `GET /recordings/{camera}`: a camera's segments, copies and holds.
pub async fn camera(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(camera): Path<String>,
) -> Response {
    if let Err(e) = csal_spool::names::check_camera_id(&camera) {
        return error_view(&caller, &e);
    }
    let now = time_to_ms(SystemTime::now());
    let query = SegmentQuery { from_ms: Some(now - 3_600_000), to_ms: None, after: None, limit: 500 };
    let segments = match state.catalog.list_segments(&camera, &query).await {
        Ok(s) => s,
        Err(e) => return error_view(&caller, &e),
    };
    let holds = state.catalog.list_holds(Some(&camera)).await.unwrap_or_default();
    let mut pending = Vec::new();
    for s in segments.iter().filter(|s| !s.is_delivered()).take(50) {
        let copies = state.catalog.segment_copies(&s.id).await.unwrap_or_default();
        pending.push((s.name.clone(), copies));
    }
    let body = html! {
        h1 { "Camera " code { (camera) } }
        p { a class="btn small secondary" href={ "/v1/cameras/" (seg(&camera)) "/playlist.m3u8" } { "VOD playlist (all)" } " "
            span class="muted" { "Play with: " code { "ffplay -headers 'Authorization: Bearer TOKEN' URL" } } }
        @if !pending.is_empty() {
            h2 { "Undelivered (" (pending.len()) ")" }
            table id="undelivered" {
                thead { tr { th { "Segment" } th { "Target" } th { "State" } th { "Attempts" } th { "Last error" } } }
                tbody {
                    @for (name, copies) in &pending {
                        @if copies.is_empty() { tr { td { (name) } td colspan="4" class="muted" { "waiting for its first attempt" } } }
                        @for c in copies {
                            tr { td { (name) } td { (c.target) } td { (format!("{:?}", c.state).to_lowercase()) }
                                 td class="num" { (c.attempts) } td class="reason" { (c.last_error.clone().unwrap_or_default()) } }
                        }
                    }
                }
            }
        }
        h2 { "Legal holds" }
        @if holds.is_empty() { p class="muted" { "None: retention deletes this camera's recordings as its policy says." } }
        @else {
            table id="holds" {
                thead { tr { th { "Range" } th { "Reason" } th { "Set by" } th { "Since" } th { } } }
                tbody {
                    @for h in &holds {
                        tr {
                            td { (h.from_ms.map(when).unwrap_or_else(|| "start".into())) " → " (h.to_ms.map(when).unwrap_or_else(|| "no end".into())) }
                            td { (h.reason) }
                            td { (h.created_by) }
                            td { (humantime::format_rfc3339_seconds(h.created_at)) }
                            td { (post_button(&format!("/holds/{}/delete", seg(&h.id)), caller.csrf(), "Lift", "small danger")) }
                        }
                    }
                }
            }
        }
        form class="card" method="post" action={ "/recordings/" (seg(&camera)) "/holds" } id="hold-form" {
            (csrf_input(caller.csrf()))
            div class="field" { label for="reason" { "Reason (case, incident)" } input type="text" id="reason" name="reason" required; }
            div class="field" { label for="from" { "From (RFC 3339, empty: from the first recording)" } input type="text" id="from" name="from" placeholder="2026-12-04T13:00:00Z"; }
            div class="field" { label for="to" { "To (RFC 3339, empty: no end)" } input type="text" id="to" name="to"; }
            button type="submit" id="add-hold" { "Place hold" }
        }
        h2 { "Last hour (" (segments.len()) " segments)" }
        table id="segments" {
            thead { tr { th { "Segment" } th { "Start" } th { "Duration" } th { "Size" } th { "Copies" } } }
            tbody {
                @for s in segments.iter().rev() {
                    tr {
                        td { a href={ "/v1/cameras/" (seg(&camera)) "/segments/" (seg(&s.name)) } { (s.name) } }
                        td { (when(s.start_ms)) }
                        td class="num" { (s.duration_ms.map(|d| format!("{:.2} s", d as f64 / 1000.0)).unwrap_or_else(|| "–".into())) }
                        td class="num" { (bytes(s.size)) }
                        td class="num" { (s.copies_stored) " / " (s.copies_required) }
                    }
                }
            }
        }
    };
    page("Recordings", "recordings", caller.csrf(), body).into_response()
}

type Fields = axum::Form<Vec<(String, String)>>;

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields.iter().rev().find(|(k, _)| k == key).map_or("", |(_, v)| v.trim())
}

/// Who a hold is placed by: the token's name, or "admin" for a session.
fn who(caller: &Caller) -> String {
    match caller {
        Caller::Token { name, .. } => format!("token {name}"),
        Caller::Session { .. } => "admin".into(),
    }
}

/// `POST /recordings/{camera}/holds`: place a legal hold.
pub async fn add_hold(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(camera): Path<String>,
    axum::Form(fields): Fields,
) -> Response {
    let parsed = (|| {
        Ok::<_, csal_core::StorageError>(csal_catalog::NewHold {
            camera_id: camera.clone(),
            from_ms: crate::v1::parse_time_param("from", Some(field(&fields, "from")))?,
            to_ms: crate::v1::parse_time_param("to", Some(field(&fields, "to")))?,
            reason: field(&fields, "reason").to_owned(),
            created_by: who(&caller),
        })
    })();
    match parsed {
        Ok(hold) => match csal_spool::holds::place(&state.catalog, hold).await {
            Ok(_) => axum::response::Redirect::to(&format!("/recordings/{}", seg(&camera))).into_response(),
            Err(e) => error_view(&caller, &e),
        },
        Err(e) => error_view(&caller, &e),
    }
}

/// `POST /holds/{id}/delete`: lift a legal hold.
pub async fn remove_hold(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match csal_spool::holds::lift(&state.catalog, &id).await {
        Ok((h, _)) => axum::response::Redirect::to(&format!("/recordings/{}", seg(&h.camera_id))).into_response(),
        Err(e) => error_view(&caller, &e),
    }
}
