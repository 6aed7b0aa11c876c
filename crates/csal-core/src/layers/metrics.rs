//! Per-module metrics through the [`metrics`] facade: operations, errors by
//! kind, bytes and a latency histogram per operation. csal-core records
//! and exports nothing itself: the application's recorder (its own
//! Prometheus / OpenTelemetry / StatsD exporter, or csal-admin's `/metrics`)
//! receives them. Without a recorder every call is a no-op.
//!
//! Series are keyed by the module's *name*, not by the built instance, so
//! they continue across a rebuild (a config edit or a token refresh builds
//! a new module under the same name).
//!
//! Labels: `module` (the instance name; not `instance`, which Prometheus
//! gives to the scrape target), `provider`, `operation`, and `kind` on
//! [`ERRORS`].

use std::time::Duration;

use metrics::{Counter, SharedString};

use crate::error::{ErrorKind, Operation};

/// Operations by module, provider and operation (counter).
pub const OPERATIONS: &str = "csal_operations_total";
/// Failed operations by module, provider and operation (counter).
pub const OPERATION_ERRORS: &str = "csal_operation_errors_total";
/// Errors by module, provider and error kind (counter).
pub const ERRORS: &str = "csal_errors_total";
/// Operation latency in seconds, by module, provider and operation (histogram).
pub const OPERATION_DURATION: &str = "csal_operation_duration_seconds";
/// Bytes written to the module (counter).
pub const WRITTEN_BYTES: &str = "csal_written_bytes_total";
/// Bytes read from the module (counter).
pub const READ_BYTES: &str = "csal_read_bytes_total";
/// Attempts retried by the retry layer (counter).
pub const RETRIES: &str = "csal_retries_total";

/// Suggested histogram bucket bounds for [`OPERATION_DURATION`], in
/// seconds (1 ms to 30 s); csal-admin's exporter uses them.
pub const LATENCY_BUCKETS_SECONDS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Give the installed recorder the units and help text of every series
/// (call once after installing it; exporters show them as `# HELP`).
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(OPERATIONS, Unit::Count, "Operations by module and operation.");
    describe_counter!(OPERATION_ERRORS, Unit::Count, "Failed operations by module and operation.");
    describe_counter!(ERRORS, Unit::Count, "Errors by module and error kind.");
    describe_histogram!(OPERATION_DURATION, Unit::Seconds, "Operation latency.");
    describe_counter!(WRITTEN_BYTES, Unit::Bytes, "Bytes written to the module.");
    describe_counter!(READ_BYTES, Unit::Bytes, "Bytes read from the module.");
    describe_counter!(RETRIES, Unit::Count, "Attempts retried by the retry layer.");
}

/// The snake_case name of an error kind (the `kind` label, as in JSON).
pub fn kind_label(kind: ErrorKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// What one module's layer reports. Cheap to clone (shared label values).
#[derive(Clone)]
pub(crate) struct ModuleMetrics {
    module: SharedString,
    provider: SharedString,
}

impl ModuleMetrics {
    pub(crate) fn new(module: &str, provider: &str) -> Self {
        let shared = |s: &str| SharedString::from_shared(std::sync::Arc::<str>::from(s));
        ModuleMetrics { module: shared(module), provider: shared(provider) }
    }

    /// One finished operation: its count, latency and, if it failed, its kind.
    pub(crate) fn record(&self, op: Operation, elapsed: Duration, error: Option<ErrorKind>) {
        let (module, provider, operation) = (self.module.clone(), self.provider.clone(), op.as_str());
        metrics::counter!(OPERATIONS, "module" => module.clone(), "provider" => provider.clone(), "operation" => operation)
            .increment(1);
        metrics::histogram!(OPERATION_DURATION, "module" => module.clone(), "provider" => provider.clone(), "operation" => operation)
            .record(elapsed.as_secs_f64());
        if let Some(kind) = error {
            metrics::counter!(OPERATION_ERRORS, "module" => module.clone(), "provider" => provider.clone(), "operation" => operation)
                .increment(1);
            metrics::counter!(ERRORS, "module" => module, "provider" => provider, "kind" => kind_label(kind))
                .increment(1);
        }
    }

    pub(crate) fn retry(&self) {
        metrics::counter!(RETRIES, "module" => self.module.clone(), "provider" => self.provider.clone()).increment(1);
    }

    /// The written-bytes counter (one registration per write, not per chunk).
    pub(crate) fn written_bytes(&self) -> Counter {
        metrics::counter!(WRITTEN_BYTES, "module" => self.module.clone(), "provider" => self.provider.clone())
    }

    /// The read-bytes counter (one registration per read, not per chunk).
    pub(crate) fn read_bytes(&self) -> Counter {
        metrics::counter!(READ_BYTES, "module" => self.module.clone(), "provider" => self.provider.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_labels_are_the_json_names() {
        assert_eq!(kind_label(ErrorKind::NotFound), "not_found");
        assert_eq!(kind_label(ErrorKind::RateLimited), "rate_limited");
    }
}
