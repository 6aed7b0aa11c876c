//! A service's storage quota as its health check reports it, written once
//! for every provider whose API tells (Drive, OneDrive, Dropbox, Box,
//! pCloud, MEGA, Swift, WebDAV): the free bytes the capacity forecast reads
//! ([`HealthReport::FREE_BYTES`]), the totals as details, and `degraded`
//! when the account is nearly full.

use csal_core::{HealthReport, HealthStatus, Result, human_bytes};

/// Detail key: the bytes the account may hold.
pub const QUOTA_TOTAL_BYTES: &str = "quota_total_bytes";
/// Detail key: the bytes the account holds (all of it, not only CSAL's).
pub const QUOTA_USED_BYTES: &str = "quota_used_bytes";

/// Detail key: why the quota could not be read (the health stays as it was).
pub const QUOTA_ERROR: &str = "quota_error";

/// Used share at which an account counts as nearly full: where Microsoft
/// Graph's quota `state` turns `nearing` ("remaining quota is less than 10%
/// of total"), applied to the services that give no state of their own.
const NEARLY_FULL_PERCENT: u64 = 90;

/// What a service says about its storage quota. Unknown parts stay `None`;
/// an unlimited account has no `total` and so no free bytes (never a
/// made-up number).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quota {
    /// Bytes the account may hold (`None`: unlimited or not told).
    pub total: Option<u64>,
    /// Bytes the account holds.
    pub used: Option<u64>,
    /// Bytes left as the service states them (else `total - used`).
    pub remaining: Option<u64>,
    /// The service's own verdict that the quota is nearly or wholly used
    /// (OneDrive's `state`), as a reason for `degraded`.
    pub warning: Option<String>,
}

impl Quota {
    /// A quota of `total` bytes (`None`: unlimited) of which `used` are taken.
    pub fn new(total: Option<u64>, used: Option<u64>) -> Self {
        Quota { total, used, ..Quota::default() }
    }

    /// Bytes that may still be written, if the service limits them.
    pub fn free(&self) -> Option<u64> {
        match (self.remaining, self.total, self.used) {
            (Some(remaining), _, _) => Some(remaining),
            (None, Some(total), Some(used)) => Some(total.saturating_sub(used)),
            _ => None,
        }
    }

    /// Why the account counts as nearly full, if it does: the service's
    /// own warning, else 90% or more of a known total used.
    pub fn nearly_full(&self) -> Option<String> {
        if let Some(warning) = &self.warning {
            return Some(warning.clone());
        }
        let total = self.total.filter(|t| *t > 0)?;
        let used = self.used.or_else(|| self.remaining.map(|r| total.saturating_sub(r)))?;
        (u128::from(used) * 100 >= u128::from(total) * u128::from(NEARLY_FULL_PERCENT)).then(|| {
            format!(
                "storage quota {}% used ({} of {})",
                u128::from(used) * 100 / u128::from(total),
                human_bytes(used),
                human_bytes(total)
            )
        })
    }

    /// Of two limits on the same writes (a team's and its member's, an
    /// account's and its container's), the one that leaves fewer bytes;
    /// a limited one wins over an unlimited one.
    pub fn tighter(self, other: Quota) -> Quota {
        match (self.free(), other.free()) {
            (Some(a), Some(b)) if b < a => other,
            (None, Some(_)) => other,
            _ => self,
        }
    }

    /// `report` with this quota's figures as details and `degraded` when
    /// the account is nearly full (an offline report stays offline).
    pub fn apply(&self, mut report: HealthReport) -> HealthReport {
        if let Some(total) = self.total {
            report = report.with_detail(QUOTA_TOTAL_BYTES, total);
        }
        if let Some(used) = self.used {
            report = report.with_detail(QUOTA_USED_BYTES, used);
        }
        if let Some(free) = self.free() {
            report = report.with_detail(HealthReport::FREE_BYTES, free);
        }
        if let Some(reason) = self.nearly_full() {
            report.degrade(reason);
        }
        report
    }
}

/// `report` with the outcome of a quota lookup made after the probe: its
/// figures, or its error as a detail (a quota that cannot be read says
/// nothing about whether the target works). An offline report is returned
/// as it is.
pub fn with_quota(report: HealthReport, quota: Result<Option<Quota>>) -> HealthReport {
    match quota {
        _ if report.status == HealthStatus::Offline => report,
        Ok(Some(quota)) => quota.apply(report),
        Ok(None) => report,
        Err(e) => report.with_detail(QUOTA_ERROR, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ok() -> HealthReport {
        HealthReport::ok(Duration::from_millis(1))
    }

    #[test]
    fn free_is_total_less_used_or_what_the_service_states() {
        assert_eq!(Quota::new(Some(100), Some(30)).free(), Some(70));
        assert_eq!(Quota::new(Some(100), Some(130)).free(), Some(0));
        let stated = Quota { remaining: Some(5), ..Quota::new(Some(100), Some(30)) };
        assert_eq!(stated.free(), Some(5));
    }

    #[test]
    fn the_tighter_of_two_quotas_leaves_fewer_bytes() {
        let team = Quota::new(Some(1000), Some(100));
        let member = Quota::new(Some(200), Some(50));
        assert_eq!(team.clone().tighter(member.clone()), member);
        assert_eq!(member.clone().tighter(team.clone()), member);
        let unlimited = Quota::new(None, Some(5));
        assert_eq!(unlimited.clone().tighter(team.clone()), team);
        assert_eq!(team.clone().tighter(unlimited), team);
    }

    #[test]
    fn unlimited_quota_reports_used_bytes_but_no_free_bytes() {
        let report = Quota::new(None, Some(1 << 40)).apply(ok());
        assert_eq!(report.free_bytes(), None);
        assert_eq!(report.details[QUOTA_USED_BYTES], 1u64 << 40);
        assert!(!report.details.contains_key(QUOTA_TOTAL_BYTES));
        assert_eq!(report.status, HealthStatus::Ok);
    }

    #[test]
    fn ninety_percent_used_is_degraded_below_is_not() {
        let report = Quota::new(Some(1000), Some(899)).apply(ok());
        assert_eq!((report.status, report.free_bytes()), (HealthStatus::Ok, Some(101)));
        let report = Quota::new(Some(1000), Some(900)).apply(ok());
        assert_eq!(report.status, HealthStatus::Degraded);
        assert!(report.last_error.as_deref().unwrap().contains("90% used"), "{report:?}");
        // Near u64::MAX the percentage must not overflow.
        let huge = Quota::new(Some(u64::MAX), Some(u64::MAX - 1)).apply(ok());
        assert_eq!(huge.status, HealthStatus::Degraded);
    }

    #[test]
    fn the_services_own_warning_degrades_and_is_the_reason() {
        let quota = Quota { warning: Some("OneDrive quota state: critical".into()), ..Quota::new(Some(100), Some(1)) };
        let report = quota.apply(ok());
        assert_eq!(report.status, HealthStatus::Degraded);
        assert_eq!(report.last_error.as_deref(), Some("OneDrive quota state: critical"));
    }
}
