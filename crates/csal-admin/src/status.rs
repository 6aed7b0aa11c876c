//! One status word per instance for the Module Manager and the API.

use axum::http::StatusCode;
use csal_core::{ErrorClass, ErrorKind, HealthStatus, InstanceInfo, InstanceStatus, StorageError};

/// What the Module Manager shows in the status column.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StatusView {
    /// `ok`, `degraded`, `offline`, `disabled` or `unchecked`.
    pub status: &'static str,
    /// Why (last health error, or the load failure).
    pub reason: Option<String>,
    /// Latency of the last health check.
    pub latency_ms: Option<f64>,
}

/// Status of an instance from the router's view of it.
pub fn status_of(info: &InstanceInfo) -> StatusView {
    match &info.status {
        InstanceStatus::Offline { kind, reason } => StatusView {
            status: "offline",
            reason: Some(format!("failed to load ({kind}): {reason}")),
            latency_ms: None,
        },
        InstanceStatus::Disabled => StatusView { status: "disabled", reason: None, latency_ms: None },
        InstanceStatus::Ready => match &info.last_health {
            Some(h) => StatusView {
                status: match h.status {
                    HealthStatus::Ok => "ok",
                    HealthStatus::Degraded => "degraded",
                    HealthStatus::Offline => "offline",
                },
                reason: h.last_error.clone(),
                latency_ms: h.latency.map(|d| d.as_secs_f64() * 1000.0),
            },
            None => StatusView { status: "unchecked", reason: Some("not checked yet".into()), latency_ms: None },
        },
        // A state added to csal-core after this page was written: never
        // shown as usable.
        other => StatusView {
            status: "offline",
            reason: Some(format!("in a state this admin server does not know: {other:?}")),
            latency_ms: None,
        },
    }
}

/// HTTP status for a storage/catalog error.
pub fn status_for(err: &StorageError) -> StatusCode {
    match err.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Locked => StatusCode::CONFLICT,
        ErrorKind::InvalidInput | ErrorKind::InvalidConfig | ErrorKind::RangeNotSatisfiable => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable | ErrorKind::Transient | ErrorKind::RateLimited => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Auth => StatusCode::BAD_GATEWAY,
        // Kinds added later (ErrorKind is non-exhaustive) answer by class.
        other => match other.class() {
            ErrorClass::Transient => StatusCode::SERVICE_UNAVAILABLE,
            ErrorClass::Auth => StatusCode::BAD_GATEWAY,
            ErrorClass::Permanent => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}
