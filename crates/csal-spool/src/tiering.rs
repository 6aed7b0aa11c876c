//! Tiering: "after N days, move the segment's copy on target A to target B"
//! (a policy's `tiers`), run by the retention sweep.
//!
//! One move, in an order where a crash at any point leaves the old copy or
//! both indexed, never nothing:
//! 1. journal a `writing` copy on B (an in-doubt attempt fsck can find);
//! 2. copy A → B through the router: a full read of A verified against the
//!    indexed CRC32C, streamed into a write on B whose receipt carries the
//!    CRC32C of the bytes B took, which must be the indexed one too;
//! 3. index B's copy as `stored`;
//! 4. delete A's copy the retention way (marked `delete_pending`, deleted on
//!    the target, then its row removed; a failed delete stays pending).
//!
//! A failed copy leaves B's row `failed` (with the reason) and A untouched:
//! the next sweep tries again. Held segments move too (a hold covers the
//! recording, wherever it lives) and stay held. A segment that already has
//! a stored copy on B only loses A's.

use csal_catalog::{CameraPolicy, Catalog, CopyState, SegmentRecord, TierRule};
use csal_core::{Checksum, Result, StorageModule, WriteMeta};

use crate::retention::{DAY_MS, PAGE, SweepReport, delete_copies};

/// Apply a camera's tier rules as of `now_ms`.
pub(crate) async fn tier_camera(
    catalog: &Catalog,
    camera: &str,
    policy: &CameraPolicy,
    now_ms: i64,
    report: &mut SweepReport,
) -> Result<()> {
    for rule in &policy.tiers {
        let cutoff = now_ms - i64::from(rule.after_days) * DAY_MS;
        let mut after = None;
        loop {
            let page = catalog.segments_ending_before(camera, cutoff, after.clone(), PAGE).await?;
            after = page.last().map(|s| (s.start_ms, s.name.clone()));
            let ids: Vec<&str> = page.iter().map(|s| s.id.as_str()).collect();
            let mut journal = catalog.copies_of(&ids).await?;
            let mut leaving = Vec::new();
            for seg in &page {
                let copies = journal.remove(&seg.id).unwrap_or_default();
                let stored_on = |t: &str| copies.iter().find(|c| c.target == t && c.state == CopyState::Stored);
                let Some(source) = stored_on(&rule.from) else { continue };
                let Some(object_id) = source.object_id.clone() else { continue };
                let moved = report.dry_run
                    || stored_on(&rule.to).is_some()
                    || move_copy(catalog, seg, rule, &object_id, &source.key_hint, report).await?;
                if moved {
                    report.plan_move(seg, rule);
                    report.moved += 1;
                    report.bytes_moved += seg.size;
                    leaving.push((seg.clone(), rule.from.clone(), Some(object_id)));
                }
            }
            delete_copies(catalog, leaving, false, report).await?;
            if page.len() < PAGE as usize {
                break;
            }
        }
    }
    Ok(())
}

/// Steps 1-3 for one segment; `false` (journalled and reported) when the
/// copy failed, so A's copy stays.
async fn move_copy(
    catalog: &Catalog,
    seg: &SegmentRecord,
    rule: &TierRule,
    object_id: &str,
    key_hint: &str,
    report: &mut SweepReport,
) -> Result<bool> {
    catalog.begin_copy(&seg.id, &rule.to, key_hint).await?;
    let indexed = Checksum { algorithm: "crc32c".into(), value: seg.crc32c.clone() };
    let mut meta = WriteMeta::new(key_hint);
    meta.content_type = seg.content_type.clone();
    let router = catalog.router();
    let copied = router.copy(&rule.from, object_id, &rule.to, meta, Some(&indexed)).await;
    let failure = match copied {
        Ok(receipt) if receipt.checksum.as_ref() == Some(&indexed) => {
            catalog.copy_stored(&seg.id, &rule.to, &receipt.object_id).await?;
            return Ok(true);
        }
        Ok(receipt) => {
            // Cannot happen with a verified read, but never index bytes that differ.
            if let Ok(module) = router.module(&rule.to) {
                let _ = module.delete(&receipt.object_id).await;
            }
            format!("the copy on {} has CRC32C {:?}, the index says {}", rule.to, receipt.checksum, seg.crc32c)
        }
        Err(e) => e.to_string(),
    };
    catalog.copy_failed(&seg.id, &rule.to, &failure).await?;
    report.move_failed += 1;
    report.error(format!("{}/{} {} -> {}: {failure}", seg.camera_id, seg.name, rule.from, rule.to));
    Ok(false)
}
