//! Legal holds, placed and lifted: the catalog's hold (which retention and
//! CSAL's own deletes honour on every target) and, on targets that can
//! make objects immutable themselves (`Capabilities::legal_hold`: S3 Object
//! Lock), the provider's legal hold on every stored copy the hold covers,
//! so not even a direct call to the provider can delete the evidence.
//!
//! Lifting releases a copy on the provider only when no other hold still
//! covers its segment. Segments recorded after a hold was placed are held
//! by CSAL; on the provider they are held when their target writes every
//! object under a hold (`object_lock_legal_hold`) or once the hold is
//! placed again.

use csal_catalog::{Catalog, CopyState, LegalHold, NewHold, SegmentQuery, SegmentRecord};
use csal_core::{Result, StorageModule};
use serde::Serialize;

/// What was done on the providers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProviderHolds {
    /// Copies whose provider-side hold was set (or lifted).
    pub copies: u64,
    /// The first failures, `segment @ target: error`; the catalog's hold
    /// stands regardless.
    pub errors: Vec<String>,
}

const PAGE: u32 = 1000;
const MAX_ERRORS: usize = 100;

/// Place a hold: in the catalog, then on the providers that can.
pub async fn place(catalog: &Catalog, hold: NewHold) -> Result<(LegalHold, ProviderHolds)> {
    let hold = catalog.add_hold(hold).await?;
    let done = on_providers(catalog, &hold, true).await?;
    Ok((hold, done))
}

/// Lift a hold: from the catalog, then on the providers for copies no
/// other hold covers.
pub async fn lift(catalog: &Catalog, id: &str) -> Result<(LegalHold, ProviderHolds)> {
    let hold = catalog.remove_hold(id).await?;
    let done = on_providers(catalog, &hold, false).await?;
    Ok((hold, done))
}

async fn on_providers(catalog: &Catalog, hold: &LegalHold, on: bool) -> Result<ProviderHolds> {
    let mut done = ProviderHolds::default();
    let router = catalog.router();
    let others = if on { Vec::new() } else { catalog.list_holds(Some(&hold.camera_id)).await? };
    let still_held = |seg: &SegmentRecord| others.iter().any(|h| h.covers(seg.start_ms, seg.end_ms));
    let mut query = SegmentQuery { from_ms: hold.from_ms, to_ms: hold.to_ms, limit: PAGE, ..Default::default() };
    loop {
        let page = catalog.list_segments(&hold.camera_id, &query).await?;
        query.after = page.last().map(|s| (s.start_ms, s.name.clone()));
        let ids: Vec<&str> = page.iter().map(|s| s.id.as_str()).collect();
        let mut journal = catalog.copies_of(&ids).await?;
        for seg in page.iter().filter(|s| !still_held(s)) {
            for copy in journal.remove(&seg.id).unwrap_or_default() {
                let (CopyState::Stored, Some(object)) = (copy.state, &copy.object_id) else { continue };
                let Ok(module) = router.module(&copy.target) else { continue };
                if !module.capabilities().legal_hold {
                    continue;
                }
                match module.set_legal_hold(object, on).await {
                    Ok(()) => done.copies += 1,
                    Err(e) if done.errors.len() < MAX_ERRORS => {
                        done.errors.push(format!("{}/{} @ {}: {e}", seg.camera_id, seg.name, copy.target));
                    }
                    Err(_) => {}
                }
            }
        }
        if page.len() < PAGE as usize {
            return Ok(done);
        }
    }
}
