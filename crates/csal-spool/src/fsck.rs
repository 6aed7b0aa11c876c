//! Reconciliation: the index against what each target really holds.
//!
//! For every camera (or one) and each of its policy's targets (or one), the
//! target is listed under the camera's folder and compared with the index:
//! - a stored copy whose object is gone (deleted behind CSAL's back) is
//!   *missing*; with `repair` it is delivered again from another stored
//!   copy;
//! - an object whose size differs from the segment's is a *size mismatch*;
//!   with `repair` it is deleted and delivered again from another copy;
//! - an object the index does not know is *unknown*; if its name carries
//!   a segment id of this camera that has no copy on the target (a write
//!   that completed but was never recorded), `repair` adopts it after
//!   checking its size and CRC32C; anything else is only reported (an
//!   admin decides).
//!
//! A run over every camera also looks at every instance for the staging of
//! uploads that never finished (`StorageModule::stale_uploads`: S3
//! multipart uploads, Swift segments without a manifest, older than the
//! instance's age): *stale_uploads*, removed with `repair`. The scheduled
//! reconciliation of `csal serve` is thus the maintenance job for them.

use std::collections::HashMap;

use csal_catalog::{Catalog, CopyState, SegmentQuery, SegmentRecord};
use csal_core::{ListRequest, Result, StorageModule};
use serde::Serialize;

use crate::delivery::{crc_of, store_copy};

/// What to check.
///
/// `#[non_exhaustive]`: more filters will come; start from
/// `FsckOptions::default()` and set fields.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct FsckOptions {
    /// One camera; all cameras with a policy when `None`.
    pub camera: Option<String>,
    /// One target; every target of each policy when `None`.
    pub target: Option<String>,
    /// Re-deliver missing or damaged copies and adopt unrecorded ones.
    pub repair: bool,
}

/// One difference between the index and a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The camera the segment belongs to.
    pub camera: String,
    /// The target instance checked.
    pub target: String,
    /// `missing`, `size_mismatch`, `unknown`, `unreadable`.
    pub kind: String,
    /// The indexed segment, when the finding is about one.
    pub segment: Option<String>,
    /// The object on the target, when there is one.
    pub object_id: Option<String>,
    /// What differs, for people.
    pub detail: String,
    /// What `repair` did about it, if anything.
    pub repaired: Option<String>,
}

/// The outcome of a run.
///
/// `#[non_exhaustive]`: runs will report more; only csal-spool builds it.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct FsckReport {
    /// Whether this run repaired what it found.
    pub repair: bool,
    /// Cameras checked.
    pub cameras: u64,
    /// Indexed copies compared with their targets.
    pub copies_checked: u64,
    /// Objects seen listing the targets.
    pub objects_listed: u64,
    /// Every difference found.
    pub findings: Vec<Finding>,
}

/// Findings listed at most (the counts in a run's log are complete).
const MAX_FINDINGS: usize = 10_000;

impl FsckReport {
    fn add(&mut self, finding: Finding) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(finding);
        }
    }

    /// Findings of one kind.
    pub fn count(&self, kind: &str) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }
}

/// Compare the index with the targets (see the module docs).
pub async fn fsck(catalog: &Catalog, options: &FsckOptions) -> Result<FsckReport> {
    let mut report = FsckReport { repair: options.repair, ..Default::default() };
    let policies = match &options.camera {
        Some(c) => vec![(c.clone(), catalog.get_policy(c).await?)],
        None => catalog.policies_in_effect().await?.into_iter().map(|a| (a.camera_id, a.policy)).collect(),
    };
    for (camera, policy) in policies {
        report.cameras += 1;
        for target in policy.targets.iter().filter(|t| options.target.as_ref().is_none_or(|o| o == *t)) {
            check_target(catalog, &camera, target, options.repair, &mut report).await?;
        }
    }
    if options.camera.is_none() {
        stale_uploads(catalog, options.target.as_deref(), options.repair, &mut report).await;
    }
    Ok(report)
}

/// Leftovers of unfinished uploads on every loaded instance (or one), each
/// a `stale_uploads` finding; removed with `repair`. Not only the cameras'
/// targets: any write (`csal put`) can leave them.
async fn stale_uploads(catalog: &Catalog, only: Option<&str>, repair: bool, report: &mut FsckReport) {
    let router = catalog.router();
    for info in router.instances() {
        if only.is_some_and(|t| t != info.name) {
            continue;
        }
        let Ok(module) = router.module(&info.name) else { continue };
        let (detail, repaired) = match module.stale_uploads(repair).await {
            Ok(found) if found.count == 0 => continue,
            Ok(found) => (
                format!("{} unfinished upload(s) holding {} bytes", found.count, found.bytes),
                repair.then(|| format!("removed {}", found.removed)),
            ),
            Err(e) => (format!("cannot look for unfinished uploads: {e}"), None),
        };
        report.add(Finding {
            camera: String::new(),
            target: info.name.clone(),
            kind: "stale_uploads".into(),
            segment: None,
            object_id: None,
            detail,
            repaired,
        });
    }
}

/// The segment id in an object name `.../stem_SEGMENTID-ULID.ext` (see
/// `delivery::key_hint`).
fn segment_id_of(object_id: &str) -> Option<&str> {
    let file = object_id.rsplit('/').next()?;
    let (_, rest) = file.rsplit_once('_')?;
    let id = rest.get(..26)?;
    id.bytes().all(|b| b.is_ascii_alphanumeric()).then_some(id)
}

async fn check_target(
    catalog: &Catalog,
    camera: &str,
    target: &str,
    repair: bool,
    report: &mut FsckReport,
) -> Result<()> {
    let router = catalog.router();
    let finding = |kind: &str, segment: Option<&SegmentRecord>, object: Option<&str>, detail: String| Finding {
        camera: camera.to_owned(),
        target: target.to_owned(),
        kind: kind.to_owned(),
        segment: segment.map(|s| s.name.clone()),
        object_id: object.map(str::to_owned),
        detail,
        repaired: None,
    };
    let module = match router.module(target) {
        Ok(m) => m,
        Err(e) => {
            report.add(finding("unreadable", None, None, e.to_string()));
            return Ok(());
        }
    };
    // What the target holds under the camera's folder.
    let mut listed: HashMap<String, u64> = HashMap::new();
    let mut request = ListRequest::new(camera);
    loop {
        let page = match module.list(&request).await {
            Ok(p) => p,
            Err(e) => {
                report.add(finding("unreadable", None, None, format!("cannot list: {e}")));
                return Ok(());
            }
        };
        listed.extend(page.objects.into_iter().map(|o| (o.object_id, o.size)));
        match page.next_page {
            Some(t) => request = request.with_continuation(Some(t)),
            None => break,
        }
    }
    report.objects_listed += listed.len() as u64;
    // What the index says it holds.
    let mut after = None;
    loop {
        let page = catalog
            .list_segments(camera, &SegmentQuery { after: after.clone(), limit: 1000, ..Default::default() })
            .await?;
        after = page.last().map(|s| (s.start_ms, s.name.clone()));
        let ids: Vec<&str> = page.iter().map(|s| s.id.as_str()).collect();
        let mut journal = catalog.copies_of(&ids).await?;
        for seg in &page {
            let copies = journal.remove(&seg.id).unwrap_or_default();
            if in_delivery(seg, &copies) {
                // The delivery worker's business: its objects may be half
                // recorded; leave them out of both sides of the comparison.
                for object in copies.iter().filter(|c| c.target == target).filter_map(|c| c.object_id.as_ref()) {
                    listed.remove(object);
                }
                continue;
            }
            let Some(copy) = copies.iter().find(|c| c.target == target && c.state == CopyState::Stored) else {
                continue;
            };
            let Some(object) = copy.object_id.clone() else { continue };
            report.copies_checked += 1;
            let problem = match listed.remove(&object) {
                // The listing is a snapshot taken before the index walk:
                // only an object that is still not there now is missing.
                None if module.stat(&object).await.is_ok() => None,
                None => Some(finding(
                    "missing",
                    Some(seg),
                    Some(&object),
                    "the index has a copy the target does not".into(),
                )),
                Some(size) if size != seg.size => Some(finding(
                    "size_mismatch",
                    Some(seg),
                    Some(&object),
                    format!("the target holds {size} bytes, the index says {}", seg.size),
                )),
                Some(_) => None,
            };
            let Some(mut problem) = problem else { continue };
            if repair {
                problem.repaired =
                    Some(redeliver(catalog, seg, target, &module, &copies, &object, &problem.kind).await);
            }
            report.add(problem);
        }
        if page.len() < 1000 {
            break;
        }
    }
    // Objects the index does not know.
    let mut unknown: Vec<(String, u64)> = listed.into_iter().collect();
    unknown.sort();
    for (object, size) in unknown {
        let seg = match segment_id_of(&object) {
            Some(id) => catalog.segment_by_id(id).await?.filter(|s| s.camera_id == camera),
            None => None,
        };
        let copies = match &seg {
            Some(s) => catalog.segment_copies(&s.id).await?,
            None => Vec::new(),
        };
        if seg.as_ref().is_some_and(|s| in_delivery(s, &copies)) {
            continue; // written by a delivery that has not recorded it yet
        }
        let mut problem =
            finding("unknown", seg.as_ref(), Some(&object), format!("{size} bytes the index does not know"));
        if let (true, Some(seg)) = (repair, &seg) {
            let has_copy = copies.iter().any(|c| c.target == target && c.state == CopyState::Stored);
            problem.repaired = Some(if has_copy {
                "not adopted: the segment already has a copy on this target".into()
            } else if size != seg.size {
                "not adopted: its size differs from the segment's".into()
            } else {
                match crc_of(&module, &object).await {
                    Ok(crc) if crc == seg.crc32c => {
                        catalog.begin_copy(&seg.id, target, &object).await?;
                        catalog.copy_stored(&seg.id, target, &object).await?;
                        "adopted".into()
                    }
                    Ok(_) => "not adopted: its CRC32C differs from the segment's".into(),
                    Err(e) => format!("not adopted: cannot read it: {e}"),
                }
            });
        }
        report.add(problem);
    }
    Ok(())
}

/// A segment the delivery worker still owns: in a spool, or with a write
/// under way (or cut off by a crash, to be adopted by the worker).
fn in_delivery(seg: &SegmentRecord, copies: &[csal_catalog::SegmentCopy]) -> bool {
    seg.spooled || copies.iter().any(|c| c.state == CopyState::Writing)
}

/// Deliver a segment's bytes to `target` again from another stored copy
/// (after deleting a damaged object); says what happened.
async fn redeliver(
    catalog: &Catalog,
    seg: &SegmentRecord,
    target: &str,
    module: &csal_core::LayeredModule,
    copies: &[csal_catalog::SegmentCopy],
    bad_object: &str,
    kind: &str,
) -> String {
    let router = catalog.router();
    let source = copies.iter().filter(|c| c.target != target && c.state == CopyState::Stored).find_map(|c| {
        let object = c.object_id.clone()?;
        router.module(&c.target).ok().map(|m| (c.target.clone(), m, object))
    });
    let Some((from, source_module, source_object)) = source else {
        return "not repaired: no other stored copy to deliver from".into();
    };
    if kind == "size_mismatch"
        && let Err(e) = module.delete(bad_object).await
    {
        return format!("not repaired: cannot delete the damaged object: {e}");
    }
    let body = match source_module.read(&source_object, None).await {
        Ok(b) => b.expect_len(seg.size),
        Err(e) => return format!("not repaired: cannot read the copy on '{from}': {e}"),
    };
    match store_copy(catalog, seg, target, module, body).await {
        Ok(object) => format!("delivered again from '{from}' as {object}"),
        Err(e) => format!("not repaired: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn segment_ids_come_out_of_object_names() {
        let id = "01M90PEFV7E9SY8SMZ21FG99RD";
        assert_eq!(super::segment_id_of(&format!("cam1/2026-12-04/seg1_{id}-01M90PEFVH82KK7HZR5MASPMXB.ts")), Some(id));
        assert_eq!(super::segment_id_of("cam1/x.ts"), None);
        assert_eq!(super::segment_id_of("cam1/a_b.ts"), None);
    }
}
