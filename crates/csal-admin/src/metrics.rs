//! `/metrics`: every instance's counters in the Prometheus text format.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use csal_core::InstanceInfo;
use csal_core::layers::metrics::LATENCY_BUCKETS_MS;

use crate::AdminState;
use crate::status::status_of;

pub async fn prometheus(State(state): State<AdminState>) -> impl IntoResponse {
    let text = render(&state.catalog.router().instances());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The Prometheus exposition text for these instances.
pub fn render(instances: &[InstanceInfo]) -> String {
    let mut out = String::new();
    let lbl = |i: &InstanceInfo| format!("instance=\"{}\",provider=\"{}\"", esc(&i.name), esc(&i.provider_type));
    let _ = writeln!(out, "# HELP csal_instance_up 1 if the instance is loaded and its last health check was ok.");
    let _ = writeln!(out, "# TYPE csal_instance_up gauge");
    for i in instances {
        let up = status_of(i).status == "ok";
        let _ = writeln!(out, "csal_instance_up{{{}}} {}", lbl(i), u8::from(up));
    }
    let _ = writeln!(out, "# HELP csal_instance_status Status of each instance (1 for its current status).");
    let _ = writeln!(out, "# TYPE csal_instance_status gauge");
    for i in instances {
        let _ = writeln!(out, "csal_instance_status{{{},status=\"{}\"}} 1", lbl(i), status_of(i).status);
    }
    let _ = writeln!(out, "# HELP csal_health_latency_seconds Latency of the last health check.");
    let _ = writeln!(out, "# TYPE csal_health_latency_seconds gauge");
    for i in instances {
        if let Some(ms) = status_of(i).latency_ms {
            let _ = writeln!(out, "csal_health_latency_seconds{{{}}} {}", lbl(i), ms / 1000.0);
        }
    }
    let with_metrics: Vec<_> = instances.iter().filter_map(|i| i.metrics.as_ref().map(|m| (i, m))).collect();
    let simple = [
        ("csal_bytes_written_total", "Bytes written to the instance.", 0),
        ("csal_bytes_read_total", "Bytes read from the instance.", 1),
        ("csal_retries_total", "Operations retried by the retry layer.", 2),
    ];
    for (name, help, which) in simple {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (i, m) in &with_metrics {
            let v = match which {
                0 => m.bytes_written,
                1 => m.bytes_read,
                _ => m.retries,
            };
            let _ = writeln!(out, "{name}{{{}}} {v}", lbl(i));
        }
    }
    let _ = writeln!(out, "# HELP csal_operations_total Operations by instance and operation.");
    let _ = writeln!(out, "# TYPE csal_operations_total counter");
    for (i, m) in &with_metrics {
        for (op, s) in &m.operations {
            let _ = writeln!(out, "csal_operations_total{{{},operation=\"{op}\"}} {}", lbl(i), s.calls);
        }
    }
    let _ = writeln!(out, "# HELP csal_operation_errors_total Failed operations by instance and operation.");
    let _ = writeln!(out, "# TYPE csal_operation_errors_total counter");
    for (i, m) in &with_metrics {
        for (op, s) in &m.operations {
            let _ = writeln!(out, "csal_operation_errors_total{{{},operation=\"{op}\"}} {}", lbl(i), s.errors);
        }
    }
    let _ = writeln!(out, "# HELP csal_errors_total Errors by instance and error kind.");
    let _ = writeln!(out, "# TYPE csal_errors_total counter");
    for (i, m) in &with_metrics {
        for (kind, n) in &m.errors_by_kind {
            let kind = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let _ = writeln!(out, "csal_errors_total{{{},kind=\"{kind}\"}} {n}", lbl(i));
        }
    }
    let _ = writeln!(out, "# HELP csal_operation_duration_seconds Operation latency.");
    let _ = writeln!(out, "# TYPE csal_operation_duration_seconds histogram");
    for (i, m) in &with_metrics {
        for (op, s) in &m.operations {
            let l = format!("{},operation=\"{op}\"", lbl(i));
            let mut cumulative = 0u64;
            for (n, count) in s.buckets.iter().enumerate() {
                cumulative += count;
                let le = match LATENCY_BUCKETS_MS.get(n) {
                    Some(ms) => format!("{}", ms / 1000.0),
                    None => "+Inf".to_owned(),
                };
                let _ = writeln!(out, "csal_operation_duration_seconds_bucket{{{l},le=\"{le}\"}} {cumulative}");
            }
            let _ = writeln!(out, "csal_operation_duration_seconds_sum{{{l}}} {}", s.latency_sum_ms / 1000.0);
            let _ = writeln!(out, "csal_operation_duration_seconds_count{{{l}}} {}", s.calls);
        }
    }
    out
}
