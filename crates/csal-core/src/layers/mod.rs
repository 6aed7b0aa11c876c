//! Cross-cutting behaviour applied by the router to every instance, written
//! once here instead of in every provider (tower's idea, without tower's
//! generics): timeouts, retries with jittered backoff, metrics (through the
//! `metrics` facade), tracing and secret scrubbing. [`LayeredModule`] composes them around a provider.

pub mod bandwidth;
mod layered;
pub mod metrics;
pub mod retry;
pub mod timeout;

pub use bandwidth::{Bandwidth, BandwidthLimits, BandwidthSchedule};
pub use layered::LayeredModule;
pub use retry::RetryPolicy;
pub use timeout::TimeoutPolicy;

/// All layer settings of a router (the same for every instance it builds).
///
/// `#[non_exhaustive]`: each new layer brings settings (`bandwidth` came
/// later); start from `LayerConfig::default()` and set fields.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LayerConfig {
    /// Deadlines of every operation.
    pub timeouts: TimeoutPolicy,
    /// Which failures are repeated, how often and how far apart.
    pub retry: RetryPolicy,
    /// Upload limits (node-wide and per instance), shared by every
    /// instance the router builds, so they survive rebuilds.
    pub bandwidth: BandwidthLimits,
}
