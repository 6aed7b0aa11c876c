//! `/metrics` in the Prometheus text format: the layer's operation metrics
//! (received through the `metrics` facade, rendered by the Prometheus
//! exporter) and the scrape-time views rendered here (module status,
//! capacity forecast, recording gateway).

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use csal_core::InstanceInfo;

use crate::AdminState;
use crate::status::status_of;

/// `GET /metrics`: every instance's counters, the gateway's and the capacity forecast, in Prometheus text format.
pub async fn prometheus(State(state): State<AdminState>) -> impl IntoResponse {
    let mut text = state.metrics.render_prometheus();
    text.push_str(&render(&state.catalog.router().instances()));
    if let Some(report) = state.capacity.latest() {
        render_capacity(&mut text, &report);
    }
    if let Some(gw) = &state.gateway {
        let cameras = state.catalog.camera_summaries().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read camera summaries for /metrics");
            Vec::new()
        });
        let now = csal_catalog::time_to_ms(std::time::SystemTime::now());
        render_recording(&mut text, &gw.stats(), &cameras, now);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

/// The recording gateway's metrics: this node's spool and deliveries, and
/// every camera's delivery lag from the shared index.
pub fn render_recording(
    out: &mut String,
    s: &csal_spool::GatewayStats,
    cameras: &[csal_catalog::CameraSummary],
    now_ms: i64,
) {
    let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in rows {
            let labels = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let one = |v: u64| vec![(String::new(), v.to_string())];
    metric(
        "csal_spool_bytes",
        "gauge",
        "Bytes in this node's spool (segments + uploads in progress).",
        one(s.spool_bytes),
    );
    metric("csal_spool_max_bytes", "gauge", "The spool's size cap.", one(s.spool_max_bytes));
    metric("csal_spool_segments", "gauge", "Segments waiting in this node's spool.", one(s.spool_segments));
    metric("csal_ingest_bytes_total", "counter", "Segment bytes taken in by this node.", one(s.ingest_bytes));
    metric("csal_ingest_segments_total", "counter", "Segments taken in by this node.", one(s.ingest_segments));
    metric(
        "csal_ingest_refused_total",
        "counter",
        "Uploads refused, by reason.",
        s.ingest_refused.iter().map(|(r, n)| (format!("reason=\"{}\"", esc(r)), n.to_string())).collect(),
    );
    let per_target = |f: fn(&csal_spool::TargetStats) -> u64| {
        s.targets.iter().map(|(t, v)| (format!("target=\"{}\"", esc(t)), f(v).to_string())).collect::<Vec<_>>()
    };
    metric("csal_deliveries_total", "counter", "Segment copies delivered, by target.", per_target(|t| t.delivered));
    metric("csal_delivered_bytes_total", "counter", "Bytes delivered, by target.", per_target(|t| t.delivered_bytes));
    metric(
        "csal_delivery_failures_total",
        "counter",
        "Failed delivery attempts, by target.",
        per_target(|t| t.failures),
    );
    let per_camera = |f: &dyn Fn(&csal_catalog::CameraSummary) -> String| {
        cameras.iter().map(|c| (format!("camera=\"{}\"", esc(&c.camera_id)), f(c))).collect::<Vec<_>>()
    };
    metric("csal_camera_segments", "gauge", "Indexed segments per camera.", per_camera(&|c| c.segments.to_string()));
    metric("csal_camera_bytes", "gauge", "Indexed bytes per camera.", per_camera(&|c| c.bytes.to_string()));
    metric(
        "csal_camera_undelivered_segments",
        "gauge",
        "Segments not yet on as many targets as their policy asks.",
        per_camera(&|c| c.undelivered.to_string()),
    );
    metric(
        "csal_camera_oldest_undelivered_age_seconds",
        "gauge",
        "Age of the oldest undelivered segment per camera (0 when all are delivered).",
        per_camera(&|c| {
            let age = c.oldest_undelivered_ms.map(|t| (now_ms - t).max(0) as f64 / 1000.0).unwrap_or(0.0);
            format!("{age}")
        }),
    );
    metric(
        "csal_camera_last_segment_age_seconds",
        "gauge",
        "Seconds since the camera's last segment arrived.",
        per_camera(&|c| format!("{}", (now_ms - c.last_received_ms).max(0) as f64 / 1000.0)),
    );
}

/// The capacity forecast per target (from the last health round).
pub fn render_capacity(out: &mut String, report: &csal_spool::capacity::CapacityReport) {
    let mut metric = |name: &str, help: &str, value: &dyn Fn(&csal_spool::capacity::TargetCapacity) -> Option<f64>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for t in &report.targets {
            if let Some(v) = value(t) {
                let _ = writeln!(out, "{name}{{target=\"{}\"}} {v}", esc(&t.target));
            }
        }
    };
    metric("csal_target_stored_bytes", "Bytes of segment copies CSAL stored on the target.", &|t| {
        Some(t.stored_bytes as f64)
    });
    metric("csal_target_bytes_per_day", "Bytes stored on the target per day, over the last day.", &|t| {
        Some(t.bytes_per_day as f64)
    });
    metric("csal_target_free_bytes", "Bytes CSAL may still write to the target (if it can tell).", &|t| {
        t.free_bytes.map(|b| b as f64)
    });
    metric("csal_target_days_left", "Days until the target is full at its rate (if it fills).", &|t| t.days_left);
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The scrape-time view of the modules (load status and last health
/// check). Their operation metrics come from the layer, through
/// [`crate::module_stats::AdminMetrics`].
pub fn render(instances: &[InstanceInfo]) -> String {
    let mut out = String::new();
    let lbl = |i: &InstanceInfo| format!("module=\"{}\",provider=\"{}\"", esc(&i.name), esc(&i.provider_type));
    let _ = writeln!(out, "# HELP csal_module_up 1 if the module is loaded and its last health check was ok.");
    let _ = writeln!(out, "# TYPE csal_module_up gauge");
    for i in instances {
        let up = status_of(i).status == "ok";
        let _ = writeln!(out, "csal_module_up{{{}}} {}", lbl(i), u8::from(up));
    }
    let _ = writeln!(out, "# HELP csal_module_status Status of each module (1 for its current status).");
    let _ = writeln!(out, "# TYPE csal_module_status gauge");
    for i in instances {
        let _ = writeln!(out, "csal_module_status{{{},status=\"{}\"}} 1", lbl(i), status_of(i).status);
    }
    let _ = writeln!(out, "# HELP csal_health_latency_seconds Latency of the last health check.");
    let _ = writeln!(out, "# TYPE csal_health_latency_seconds gauge");
    for i in instances {
        if let Some(ms) = status_of(i).latency_ms {
            let _ = writeln!(out, "csal_health_latency_seconds{{{}}} {}", lbl(i), ms / 1000.0);
        }
    }
    let _ =
        writeln!(out, "# HELP csal_module_free_bytes Bytes CSAL may still write, as the last health check reported.");
    let _ = writeln!(out, "# TYPE csal_module_free_bytes gauge");
    for i in instances {
        if let Some(free) = i.last_health.as_ref().and_then(|h| h.free_bytes()) {
            let _ = writeln!(out, "csal_module_free_bytes{{{}}} {free}", lbl(i));
        }
    }
    out
}
