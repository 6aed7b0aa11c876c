//! Capacity forecast: how long each target lasts at the rate CSAL fills it,
//! and a warning days before it is full.
//!
//! Per target: the bytes CSAL stored there (from the segment index), the
//! bytes it took in over the last day (the rate), and the space left as the
//! provider's last health check reported it ([`HealthReport::FREE_BYTES`]:
//! local_fs free space less its `min_free_mb` reserve; the quota left of
//! the providers whose API tells, through `csal_http::Quota`).
//! `days_left = free / rate`. Below the horizon (default 3 days) the
//! target's health turns `degraded` with the forecast as the reason, so the
//! Module Manager, `/metrics` and `write_for_camera`'s ordering all see it.
//!
//! The forecast is "headroom in days of recording": a target whose
//! retention frees space as fast as cameras fill it keeps a steady
//! `days_left`, and a warning there means the headroom is less than the
//! horizon (a legal hold or a stalled sweep would fill it that fast).

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use csal_catalog::{Catalog, TargetUsage, time_to_ms};
use csal_core::{HealthReport, InstanceStatus, Result, human_bytes};
use serde::Serialize;

/// Warn when a target is full in fewer days than this.
pub const DEFAULT_HORIZON_DAYS: f64 = 3.0;
/// The rate is measured over the last day.
const WINDOW_MS: i64 = 24 * 3600 * 1000;
/// A target that started receiving minutes ago is measured over at least
/// this long (its first burst is not yet a day's rate).
const MIN_SPAN_MS: i64 = 5 * 60 * 1000;
const DAY_MS: f64 = 24.0 * 3600.0 * 1000.0;

/// The forecast of one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetCapacity {
    /// The target instance's name.
    pub target: String,
    /// Bytes of the segment copies CSAL stored there.
    pub stored_bytes: u64,
    /// How many segment copies those are.
    pub stored_copies: u64,
    /// Bytes stored there per day, measured over the last day.
    pub bytes_per_day: u64,
    /// Bytes CSAL may still write, if the provider can tell.
    pub free_bytes: Option<u64>,
    /// Days until full at `bytes_per_day` (None: space unknown or nothing
    /// arriving).
    pub days_left: Option<f64>,
    /// Why the target is flagged (below the horizon), if it is.
    pub warning: Option<String>,
}

/// Every target's forecast at one moment.
///
/// `#[non_exhaustive]`: forecasts will carry more; only csal-spool builds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CapacityReport {
    /// When it was made (Unix ms).
    pub at_ms: i64,
    /// Targets full within this many days are flagged.
    pub horizon_days: f64,
    /// One forecast per target of any camera policy.
    pub targets: Vec<TargetCapacity>,
}

/// The forecast of one target from its usage and free space.
pub fn forecast_target(usage: &TargetUsage, free_bytes: Option<u64>, now_ms: i64, horizon_days: f64) -> TargetCapacity {
    let window_start = now_ms - WINDOW_MS;
    let span_ms = usage.recent_oldest_ms.map_or(WINDOW_MS, |oldest| now_ms - oldest.max(window_start));
    let bytes_per_day = (usage.recent_bytes as f64 * DAY_MS / span_ms.max(MIN_SPAN_MS) as f64) as u64;
    let days_left = match free_bytes {
        Some(free) if bytes_per_day > 0 => Some(free as f64 / bytes_per_day as f64),
        _ => None,
    };
    let warning = days_left.filter(|d| *d < horizon_days).map(|d| {
        format!(
            "full in {d:.1} days at {}/day ({} left; warning below {horizon_days} days)",
            human_bytes(bytes_per_day),
            human_bytes(free_bytes.unwrap_or(0))
        )
    });
    TargetCapacity {
        target: usage.target.clone(),
        stored_bytes: usage.stored_bytes,
        stored_copies: usage.stored_copies,
        bytes_per_day,
        free_bytes,
        days_left,
        warning,
    }
}

/// Every loaded instance's forecast, from the index and each instance's
/// last health report (run the health checks first for fresh free space).
pub async fn forecast(catalog: &Catalog, horizon_days: f64) -> Result<CapacityReport> {
    let now_ms = time_to_ms(SystemTime::now());
    let mut usage = catalog.target_usage(now_ms - WINDOW_MS).await?;
    let router = catalog.router();
    for info in router.instances() {
        if info.status == InstanceStatus::Ready && !usage.iter().any(|u| u.target == info.name) {
            usage.push(TargetUsage {
                target: info.name,
                stored_bytes: 0,
                stored_copies: 0,
                recent_bytes: 0,
                recent_oldest_ms: None,
            });
        }
    }
    usage.sort_by(|a, b| a.target.cmp(&b.target));
    let targets = usage
        .iter()
        .map(|u| {
            let free = router.module(&u.target).ok().and_then(|m| m.last_health()).and_then(|h| h.free_bytes());
            forecast_target(u, free, now_ms, horizon_days)
        })
        .collect();
    Ok(CapacityReport { at_ms: now_ms, horizon_days, targets })
}

/// The latest forecast, shared by the health loop that refreshes it and
/// the pages and `/metrics` that show it (so a scrape never scans the
/// index).
#[derive(Clone, Debug)]
pub struct CapacityBoard {
    horizon_days: f64,
    latest: Arc<Mutex<Option<CapacityReport>>>,
}

impl Default for CapacityBoard {
    fn default() -> Self {
        CapacityBoard::new(DEFAULT_HORIZON_DAYS)
    }
}

impl CapacityBoard {
    /// An empty board flagging targets full within `horizon_days`.
    pub fn new(horizon_days: f64) -> Self {
        CapacityBoard { horizon_days, latest: Arc::default() }
    }

    /// See [`CapacityBoard::new`].
    pub fn horizon_days(&self) -> f64 {
        self.horizon_days
    }

    /// Forecast now (right after a round of health checks) and write the
    /// result into each instance's last health: details always, and
    /// `degraded` for a target below the horizon.
    pub async fn refresh(&self, catalog: &Catalog) -> Result<CapacityReport> {
        let report = forecast(catalog, self.horizon_days).await?;
        let router = catalog.router();
        for t in &report.targets {
            let Ok(module) = router.module(&t.target) else { continue };
            module.amend_last_health(|h| amend(h, t));
        }
        *self.latest.lock().expect("capacity lock") = Some(report.clone());
        Ok(report)
    }

    /// The last forecast made, if any.
    pub fn latest(&self) -> Option<CapacityReport> {
        self.latest.lock().expect("capacity lock").clone()
    }
}

fn amend(health: &mut HealthReport, t: &TargetCapacity) {
    health.details.insert("stored_bytes".into(), t.stored_bytes.into());
    health.details.insert("bytes_per_day".into(), t.bytes_per_day.into());
    if let Some(days) = t.days_left {
        health.details.insert("days_left".into(), ((days * 10.0).round() / 10.0).into());
    }
    if let Some(warning) = &t.warning {
        health.degrade(warning.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn usage(recent_bytes: u64, recent_oldest_ms: Option<i64>) -> TargetUsage {
        TargetUsage { target: "t".into(), stored_bytes: 0, stored_copies: 0, recent_bytes, recent_oldest_ms }
    }

    #[test]
    fn a_day_of_recording_is_the_rate() {
        let now = 1_000 * WINDOW_MS;
        let t = forecast_target(&usage(10 * GIB, Some(now - WINDOW_MS)), Some(25 * GIB), now, 3.0);
        assert_eq!(t.bytes_per_day, 10 * GIB);
        assert_eq!(t.days_left, Some(2.5));
        assert!(t.warning.as_deref().unwrap().starts_with("full in 2.5 days at 10.0 GiB/day"), "{t:?}");
        let roomy = forecast_target(&usage(10 * GIB, Some(now - WINDOW_MS)), Some(40 * GIB), now, 3.0);
        assert_eq!((roomy.days_left, roomy.warning), (Some(4.0), None));
    }

    #[test]
    fn a_young_target_is_measured_over_its_age_but_at_least_five_minutes() {
        let now = 1_000 * WINDOW_MS;
        // Six hours old: 1 GiB in 6 h is 4 GiB a day.
        let t = forecast_target(&usage(GIB, Some(now - WINDOW_MS / 4)), None, now, 3.0);
        assert_eq!(t.bytes_per_day, 4 * GIB);
        assert_eq!((t.days_left, t.warning), (None, None), "no free space known: no forecast");
        // Ten seconds old: measured as five minutes.
        let burst = forecast_target(&usage(GIB, Some(now - 10_000)), Some(GIB), now, 3.0);
        assert_eq!(burst.bytes_per_day, 288 * GIB);
    }

    #[test]
    fn nothing_arriving_means_no_forecast() {
        let t = forecast_target(&usage(0, None), Some(GIB), 5 * WINDOW_MS, 3.0);
        assert_eq!((t.bytes_per_day, t.days_left, t.warning), (0, None, None));
    }

    #[test]
    fn a_degraded_or_offline_report_keeps_its_first_reason() {
        let t = TargetCapacity {
            target: "t".into(),
            stored_bytes: 1,
            stored_copies: 1,
            bytes_per_day: 2,
            free_bytes: Some(1),
            days_left: Some(0.5),
            warning: Some("full in 0.5 days".into()),
        };
        let mut ok = HealthReport::ok(std::time::Duration::from_millis(1));
        amend(&mut ok, &t);
        assert_eq!(ok.status, csal_core::HealthStatus::Degraded);
        assert_eq!(ok.last_error.as_deref(), Some("full in 0.5 days"));
        assert_eq!(ok.details["days_left"], serde_json::json!(0.5));
        let mut offline = HealthReport::offline(&csal_core::StorageError::transient("down"));
        amend(&mut offline, &t);
        assert_eq!(offline.status, csal_core::HealthStatus::Offline);
        assert!(offline.last_error.unwrap().contains("down"));
    }
}
