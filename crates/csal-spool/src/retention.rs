//! Retention: deleting recordings when their camera's policy says so, and
//! never while a legal hold covers them.
//!
//! Per camera, in this order, oldest first, page by page:
//! 1. `keep_days` per target: that target's copy of a segment ended more
//!    than N days ago goes, unless it is the segment's last stored copy
//!    (then only the camera's `retention_days` may delete it: a recording
//!    that failed over to the short-lived target is not lost early);
//! 2. `retention_days`: every copy of a segment ended more than N days ago
//!    goes, then its index row;
//! 3. `max_bytes`: while the camera's stored bytes (each copy counted) are
//!    above the cap, its oldest segments go.
//!
//! Then the tier rules move copies between targets (`crate::tiering`).
//!
//! Storage first, index after: a copy is marked `delete_pending`, deleted
//! on its target, and only then is its row removed; a delete that fails
//! stays `delete_pending` (with the error) and is tried again by the next
//! sweep. A delete the provider refuses because it locks the object (S3
//! Object Lock: a legal hold or retention, `ErrorKind::Locked`) is no
//! failure of the target: the copy is intact and goes back to `stored`
//! (with the reason), counted as `locked`, and is tried again by the next
//! sweep (retention on the server ends one day; a hold is lifted).
//! Segments still in a spool are left alone (they go after delivery).

use csal_catalog::{CameraPolicy, Catalog, CopyState, LegalHold, SegmentRecord, time_to_ms};
use csal_core::{ErrorKind, Result, StorageModule};
use futures::StreamExt;
use serde::Serialize;

/// Segments handled per page (one catalog transaction each way).
pub(crate) const PAGE: u32 = 500;
/// Deletes in flight at once.
const PARALLEL_DELETES: usize = 16;
pub(crate) const DAY_MS: i64 = 86_400_000;
/// Planned deletions listed in a report (the counts are always complete).
const MAX_LISTED: usize = 1000;

/// What a sweep did (or, dry, would do).
///
/// `#[non_exhaustive]`: sweeps will report more; only csal-spool builds it.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct SweepReport {
    /// Nothing was deleted: the report says what would be.
    pub dry_run: bool,
    /// Segments removed from the index (every copy deleted).
    pub segments_deleted: u64,
    /// Copies deleted from targets (including those of removed segments).
    pub copies_deleted: u64,
    /// Bytes the deleted copies held.
    pub bytes_freed: u64,
    /// Segments that would have gone but a legal hold covers them.
    pub held: u64,
    /// Copies whose delete failed; they stay `delete_pending`.
    pub failed: u64,
    /// Copies the provider keeps (server-side hold or retention); they stay `stored`.
    pub locked: u64,
    /// The first planned deletions: `camera/segment @ target (rule)`.
    pub planned: Vec<String>,
    /// Copies moved by tier rules (dry: that would move); the old copies'
    /// deletes count in `copies_deleted` too.
    pub moved: u64,
    /// Bytes of the moved copies.
    pub bytes_moved: u64,
    /// Moves whose copy failed: the old copy stays, the next sweep retries.
    pub move_failed: u64,
    /// The first planned moves: `camera/segment: from -> to (tier N days)`.
    pub planned_moves: Vec<String>,
    /// Failures that stopped part of the sweep (it carries on with the rest).
    pub errors: Vec<String>,
    /// Dry runs: copies already counted (a copy one rule would delete is
    /// not counted again by the next).
    #[serde(skip)]
    dry_counted: std::collections::HashSet<(String, String)>,
}

impl SweepReport {
    pub(crate) fn plan_move(&mut self, seg: &SegmentRecord, rule: &csal_catalog::TierRule) {
        if self.planned_moves.len() < MAX_LISTED {
            let (camera, name, from, to, days) = (&seg.camera_id, &seg.name, &rule.from, &rule.to, rule.after_days);
            self.planned_moves.push(format!("{camera}/{name}: {from} -> {to} (tier after {days} days)"));
        }
    }

    pub(crate) fn error(&mut self, message: String) {
        if self.errors.len() < MAX_LISTED {
            self.errors.push(message);
        }
    }

    fn plan(&mut self, seg: &SegmentRecord, target: &str, rule: &str) {
        if self.planned.len() < MAX_LISTED {
            self.planned.push(format!("{}/{} @ {target} ({rule})", seg.camera_id, seg.name));
        }
    }
}

/// One sweep over every camera with a retention rule, as of `now_ms`.
pub async fn sweep(catalog: &Catalog, now_ms: i64, dry_run: bool) -> Result<SweepReport> {
    let mut report = SweepReport { dry_run, ..Default::default() };
    for csal_catalog::AppliedPolicy { camera_id: camera, policy, .. } in catalog.policies_in_effect().await? {
        if policy.has_retention() {
            let holds = catalog.list_holds(Some(&camera)).await?;
            sweep_camera(catalog, &camera, &policy, &holds, now_ms, &mut report).await?;
        }
        // After retention, so nothing about to be deleted is moved first.
        crate::tiering::tier_camera(catalog, &camera, &policy, now_ms, &mut report).await?;
    }
    if !dry_run
        && (report.copies_deleted > 0
            || report.failed > 0
            || report.locked > 0
            || report.moved > 0
            || report.move_failed > 0)
    {
        tracing::info!(
            moved = report.moved,
            move_failed = report.move_failed,
            segments = report.segments_deleted,
            copies = report.copies_deleted,
            bytes = report.bytes_freed,
            held = report.held,
            failed = report.failed,
            locked = report.locked,
            "retention sweep"
        );
    }
    Ok(report)
}

fn held(holds: &[LegalHold], seg: &SegmentRecord) -> bool {
    holds.iter().any(|h| h.covers(seg.start_ms, seg.end_ms))
}

async fn sweep_camera(
    catalog: &Catalog,
    camera: &str,
    policy: &CameraPolicy,
    holds: &[LegalHold],
    now_ms: i64,
    report: &mut SweepReport,
) -> Result<()> {
    // 1. One target's copies.
    for (target, days) in &policy.keep_days {
        let cutoff = now_ms - i64::from(*days) * DAY_MS;
        let mut after = None;
        loop {
            let page = catalog.segments_ending_before(camera, cutoff, after.clone(), PAGE).await?;
            after = page.last().map(|s| (s.start_ms, s.name.clone()));
            let mut doomed = Vec::new();
            let ids: Vec<&str> = page.iter().map(|s| s.id.as_str()).collect();
            let mut journal = catalog.copies_of(&ids).await?;
            for seg in &page {
                let copies = journal.remove(&seg.id).unwrap_or_default();
                let Some(copy) = copies.iter().find(|c| &c.target == target && c.state != CopyState::Writing) else {
                    continue;
                };
                let others = copies.iter().filter(|c| &c.target != target && c.state == CopyState::Stored).count();
                if others == 0 {
                    continue;
                }
                if held(holds, seg) {
                    report.held += 1;
                    continue;
                }
                report.plan(seg, target, &format!("keep_days {days}"));
                doomed.push((seg.clone(), target.clone(), copy.object_id.clone()));
            }
            delete_copies(catalog, doomed, false, report).await?;
            if page.len() < PAGE as usize {
                break;
            }
        }
    }
    // 2. Whole segments past the camera's retention.
    if let Some(days) = policy.retention_days {
        let cutoff = now_ms - i64::from(days) * DAY_MS;
        delete_segments_while(catalog, camera, cutoff, holds, &format!("retention_days {days}"), report, |_| true)
            .await?;
    }
    // 3. The oldest segments while over the byte cap.
    if let Some(cap) = policy.max_bytes {
        let stored = catalog.camera_stored_bytes(camera).await?;
        if stored > cap {
            let mut over = stored - cap;
            delete_segments_while(catalog, camera, i64::MAX, holds, &format!("max_bytes {cap}"), report, |seg| {
                if over == 0 {
                    return false;
                }
                over = over.saturating_sub(seg.size * u64::from(seg.copies_stored.max(1)));
                true
            })
            .await?;
        }
    }
    Ok(())
}

/// Delete whole segments ending before `cutoff`, oldest first, while
/// `take` says so (held ones are skipped and not offered to `take`).
async fn delete_segments_while(
    catalog: &Catalog,
    camera: &str,
    cutoff: i64,
    holds: &[LegalHold],
    rule: &str,
    report: &mut SweepReport,
    mut take: impl FnMut(&SegmentRecord) -> bool,
) -> Result<()> {
    let mut after = None;
    loop {
        let page = catalog.segments_ending_before(camera, cutoff, after.clone(), PAGE).await?;
        after = page.last().map(|s| (s.start_ms, s.name.clone()));
        let mut doomed = Vec::new();
        let mut stop = false;
        let ids: Vec<&str> = page.iter().map(|s| s.id.as_str()).collect();
        let mut journal = catalog.copies_of(&ids).await?;
        for seg in &page {
            if held(holds, seg) {
                report.held += 1;
                continue;
            }
            if !take(seg) {
                stop = true;
                break;
            }
            for copy in journal.remove(&seg.id).unwrap_or_default() {
                report.plan(seg, &copy.target, rule);
                if copy.state == CopyState::Writing {
                    // An attempt cut off by a crash after the segment was
                    // delivered elsewhere; fsck finds any object it left.
                    tracing::warn!(camera = %seg.camera_id, segment = %seg.name, target = %copy.target,
                        "dropping an in-doubt delivery row of an expired segment");
                }
                doomed.push((seg.clone(), copy.target, copy.object_id));
            }
        }
        delete_copies(catalog, doomed, true, report).await?;
        if stop || page.len() < PAGE as usize {
            return Ok(());
        }
    }
}

/// Delete copies on their targets (storage first), then their rows (and,
/// with `drop_empty`, segments left without copies). A copy without an
/// object id (a failed or cut-off attempt) has nothing on its target.
pub(crate) async fn delete_copies(
    catalog: &Catalog,
    doomed: Vec<(SegmentRecord, String, Option<String>)>,
    drop_empty: bool,
    report: &mut SweepReport,
) -> Result<()> {
    if doomed.is_empty() {
        return Ok(());
    }
    if report.dry_run {
        let mut segments = std::collections::BTreeSet::new();
        for (seg, target, object) in &doomed {
            segments.insert(seg.id.clone());
            if object.is_some() && report.dry_counted.insert((seg.id.clone(), target.clone())) {
                report.copies_deleted += 1;
                report.bytes_freed += seg.size;
            }
        }
        if drop_empty {
            report.segments_deleted += segments.len() as u64;
        }
        return Ok(());
    }
    let pairs: Vec<(String, String)> = doomed.iter().map(|(s, t, _)| (s.id.clone(), t.clone())).collect();
    catalog.mark_copies_deleting(&pairs).await?;
    let router = catalog.router();
    let results: Vec<_> = futures::stream::iter(doomed)
        .map(|(seg, target, object)| {
            let router = router.clone();
            async move {
                let stored = object.is_some();
                let result = match (object, router.module(&target)) {
                    (None, _) => Ok(()),
                    (Some(object), Ok(module)) => module.delete(&object).await,
                    (Some(_), Err(e)) => Err(e),
                };
                (seg, target, stored, result)
            }
        })
        .buffer_unordered(PARALLEL_DELETES)
        .collect()
        .await;
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let mut locked = Vec::new();
    for (seg, target, stored, result) in results {
        match result {
            Err(e) if e.kind() == ErrorKind::Locked => {
                report.locked += 1;
                locked.push((seg.id, target, e.to_string()));
            }
            Ok(()) => {
                if stored {
                    report.copies_deleted += 1;
                    report.bytes_freed += seg.size;
                }
                done.push((seg.id, target));
            }
            Err(e) => {
                report.failed += 1;
                let message = e.to_string();
                report.error(format!("{}/{} @ {target}: {message}", seg.camera_id, seg.name));
                failed.push((seg.id, target, message));
            }
        }
    }
    catalog.copies_delete_failed(&failed).await?;
    catalog.copies_locked(&locked).await?;
    report.segments_deleted += catalog.copies_deleted(&done, drop_empty).await?;
    Ok(())
}

/// Now, in the catalog's milliseconds.
pub fn now_ms() -> i64 {
    time_to_ms(std::time::SystemTime::now())
}
