//! The delivery worker: sends each spooled segment of this node to its
//! camera's targets until the policy's `copies` distinct targets hold it,
//! then lets the spool file go.
//!
//! - Targets are tried in policy order; ones that failed recently wait out
//!   a jittered backoff (honouring `retry_after`), ones whose last health
//!   check said offline come last, so a down target neither blocks the
//!   others nor is hammered by every segment.
//! - Writes per target and segments at once are bounded.
//! - The journal row of a (segment, target) is written `writing` before the
//!   first byte goes out. A target with an earlier row (a failed attempt,
//!   or one cut off by a crash) is first searched for an object that
//!   attempt completed (its key hint carries the segment id): a match by
//!   size and CRC32C is adopted, anything else under that hint deleted, so
//!   a target never holds a segment twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use csal_catalog::{CopyState, SegmentCopy, SegmentRecord, time_to_ms};
use csal_core::{ByteStream, HealthStatus, LayeredModule, ListRequest, StorageError, StorageModule, WriteMeta};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::Semaphore;

use crate::Inner;

/// A target that failed: not tried again before `until`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cooling {
    failures: u32,
    until: Instant,
}

const BASE_BACKOFF: Duration = Duration::from_millis(500);

fn now_ms() -> i64 {
    time_to_ms(std::time::SystemTime::now())
}

/// Full-jitter exponential backoff: up to `base * 2^(n-1)`, capped.
fn backoff(failures: u32, max: Duration) -> Duration {
    let ceiling = BASE_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(max);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(ms / 2 + fastrand::u64(0..=ms / 2))
}

/// Run until the gateway stops: find due segments, deliver them.
pub(crate) async fn run(inner: Arc<Inner>) {
    let slots = Arc::new(Semaphore::new(inner.config.deliveries.max(1)));
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut stop = inner.stop.subscribe();
    let mut reloads = inner.catalog.subscribe_reloads();
    loop {
        while let Some(done) = tasks.try_join_next() {
            if let Ok(id) = done {
                in_flight.remove(&id);
            }
        }
        let free = slots.available_permits();
        if free > 0 {
            let limit = (free + in_flight.len()) as u32;
            match inner.catalog.due_segments(inner.spool.node_id(), now_ms(), limit).await {
                Ok(due) => {
                    for seg in due {
                        if in_flight.contains(&seg.id) {
                            continue;
                        }
                        let Ok(permit) = slots.clone().try_acquire_owned() else { break };
                        in_flight.insert(seg.id.clone());
                        let inner = inner.clone();
                        tasks.spawn(async move {
                            let id = seg.id.clone();
                            deliver_segment(&inner, seg).await;
                            drop(permit);
                            id
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the delivery queue from the catalog"),
            }
        }
        tokio::select! {
            _ = inner.wake.notified() => {}
            Ok(()) = reloads.changed() => {
                // An admin changed instances (enabled a target, fixed its
                // credentials): try everything waiting again now.
                inner.cooling.lock().unwrap_or_else(|p| p.into_inner()).clear();
                if let Err(e) = inner.catalog.retry_spooled_now(inner.spool.node_id()).await {
                    tracing::warn!(error = %e, "cannot reschedule deliveries after a catalog change");
                }
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(id) = done {
                    in_flight.remove(&id);
                }
            }
            _ = tokio::time::sleep(inner.config.poll_interval) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

/// One pass over one segment: write it where copies are missing; then
/// either release the spool file or schedule the next pass.
async fn deliver_segment(inner: &Arc<Inner>, seg: SegmentRecord) {
    if let Err(e) = try_deliver(inner, &seg).await {
        // The catalog or the spool failed (not a target): try again later.
        tracing::warn!(camera = %seg.camera_id, segment = %seg.name, error = %e, "delivery pass failed");
        let at = now_ms() + backoff(4, inner.config.max_backoff).as_millis() as i64;
        let _ = inner.catalog.defer_segment(&seg.id, at).await;
    }
}

/// One delivery pass; releases the spool file once enough copies exist.
async fn try_deliver(inner: &Arc<Inner>, seg: &SegmentRecord) -> csal_core::Result<()> {
    let policy = inner.catalog.get_policy(&seg.camera_id).await?;
    let journal = inner.catalog.segment_copies(&seg.id).await?;
    let mut stored: usize = journal.iter().filter(|c| c.state == CopyState::Stored).count();
    let required = seg.copies_required.max(1) as usize;
    if stored < required {
        let router = inner.catalog.router();
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut last_resort = Vec::new();
        let mut earliest_cooling: Option<Instant> = None;
        for target in &policy.targets {
            if journal.iter().any(|c| &c.target == target && c.state == CopyState::Stored) {
                continue;
            }
            let module = match router.module(target) {
                Ok(m) => m,
                Err(e) => {
                    tracing::debug!(target = %target, error = %e, "target not usable for delivery");
                    continue;
                }
            };
            if let Some(until) = cooling_until(inner, target).filter(|u| *u > now) {
                earliest_cooling = Some(earliest_cooling.map_or(until, |e| e.min(until)));
                continue;
            }
            let prior = journal.iter().find(|c| &c.target == target).cloned();
            let offline = module.last_health().is_some_and(|h| h.status == HealthStatus::Offline);
            if offline {
                last_resort.push((target.clone(), module, prior))
            } else {
                ready.push((target.clone(), module, prior))
            }
        }
        let attempted = !ready.is_empty() || !last_resort.is_empty();
        let mut candidates = ready.into_iter().chain(last_resort);
        let mut running = FuturesUnordered::new();
        while stored + running.len() < required {
            let Some((target, module, prior)) = candidates.next() else { break };
            running.push(deliver_copy(inner, seg, target, module, prior));
        }
        while let Some(result) = running.next().await {
            if result.is_ok() {
                stored += 1;
                let _ = inner.progress.send(seg.id.clone());
            } else if stored + running.len() < required
                && let Some((target, module, prior)) = candidates.next()
            {
                running.push(deliver_copy(inner, seg, target, module, prior));
            }
        }
        if stored < required {
            // Failed targets say when they may be tried again; with no
            // target usable at all (missing, disabled), look again later.
            let idle = if attempted { 1 } else { 6 };
            let cooling = policy.targets.iter().filter_map(|t| cooling_until(inner, t)).filter(|u| *u > Instant::now());
            let retry = cooling
                .min()
                .or(earliest_cooling)
                .map(|u| u.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|| backoff(idle, inner.config.max_backoff))
                .max(Duration::from_millis(100));
            inner.catalog.defer_segment(&seg.id, now_ms() + retry.as_millis() as i64).await?;
            return Ok(());
        }
    }
    inner.catalog.mark_unspooled(&seg.id).await?;
    inner.spool.remove(&seg.id, seg.size).await?;
    let _ = inner.progress.send(seg.id.clone());
    tracing::debug!(camera = %seg.camera_id, segment = %seg.name, copies = stored, "segment delivered");
    Ok(())
}

fn cooling_until(inner: &Inner, target: &str) -> Option<Instant> {
    inner.cooling.lock().unwrap_or_else(|p| p.into_inner()).get(target).map(|c| c.until)
}

fn target_failed(inner: &Inner, target: &str, retry_after: Option<Duration>) {
    let mut map = inner.cooling.lock().unwrap_or_else(|p| p.into_inner());
    let entry = map.entry(target.to_owned()).or_insert(Cooling { failures: 0, until: Instant::now() });
    entry.failures = entry.failures.saturating_add(1);
    let wait = backoff(entry.failures, inner.config.max_backoff).max(retry_after.unwrap_or_default());
    entry.until = Instant::now() + wait;
}

fn target_ok(inner: &Inner, target: &str) {
    inner.cooling.lock().unwrap_or_else(|p| p.into_inner()).remove(target);
}

fn target_slot(inner: &Inner, target: &str) -> Arc<Semaphore> {
    let mut map = inner.target_slots.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(target.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(inner.config.per_target.max(1)))).clone()
}

/// The key hint of a segment's objects: `camera/YYYY-MM-DD/stem_ID.ext`.
/// The segment id makes every object of this segment findable by prefix.
pub(crate) fn key_hint(seg: &SegmentRecord) -> String {
    let day =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(seg.start_ms.max(0) as u64))
            .to_string();
    let day = &day[..10];
    let (stem, ext) = match seg.name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, Some(e)),
        _ => (seg.name.as_str(), None),
    };
    match ext {
        Some(ext) => format!("{}/{day}/{stem}_{}.{ext}", seg.camera_id, seg.id),
        None => format!("{}/{day}/{stem}_{}", seg.camera_id, seg.id),
    }
}

/// Write one copy (or adopt the one an earlier attempt left); journal it.
async fn deliver_copy(
    inner: &Arc<Inner>,
    seg: &SegmentRecord,
    target: String,
    module: Arc<LayeredModule>,
    prior: Option<SegmentCopy>,
) -> csal_core::Result<String> {
    let slot = target_slot(inner, &target);
    let _permit = slot.acquire_owned().await.map_err(|_| StorageError::permanent("delivery slots closed"))?;
    let result = write_copy(inner, seg, &target, &module, prior).await;
    match &result {
        Ok((_, adopted)) => {
            target_ok(inner, &target);
            inner.stats.delivered(&target, seg.size, *adopted);
        }
        Err(e) => {
            let message = e.to_string();
            tracing::warn!(camera = %seg.camera_id, segment = %seg.name, target = %target, error = %message,
                "delivery to target failed; will retry");
            target_failed(inner, &target, e.retry_after());
            inner.stats.failed(&target, &message);
            if let Err(j) = inner.catalog.copy_failed(&seg.id, &target, &message).await {
                tracing::warn!(error = %j, "cannot journal a failed delivery");
            }
        }
    }
    result.map(|(id, _)| id)
}

async fn write_copy(
    inner: &Arc<Inner>,
    seg: &SegmentRecord,
    target: &str,
    module: &LayeredModule,
    prior: Option<SegmentCopy>,
) -> csal_core::Result<(String, bool)> {
    if let Some(prior) = prior
        && let Some(object_id) = adopt_earlier_attempt(module, &prior.key_hint, seg).await?
    {
        tracing::info!(camera = %seg.camera_id, segment = %seg.name, target = %target, object = %object_id,
                "an earlier delivery attempt had completed; adopted its object");
        inner.catalog.copy_stored(&seg.id, target, &object_id).await?;
        return Ok((object_id, true));
    }
    let body = ByteStream::from_file(inner.spool.segment_path(&seg.id)).await?;
    if body.size() != Some(seg.size) {
        return Err(StorageError::new(
            csal_core::ErrorKind::Integrity,
            format!("spool file of segment '{}' has {:?} bytes, the index says {}", seg.name, body.size(), seg.size),
        ));
    }
    Ok((store_copy(&inner.catalog, seg, target, module, body).await?, false))
}

/// Write `body` (the segment's bytes) to `target` as a journaled copy:
/// `writing` before the first byte, `stored` with the object id after the
/// target confirmed the size and CRC32C; a copy failing that check is
/// deleted again. Used by delivery and by fsck's re-delivery.
pub(crate) async fn store_copy(
    catalog: &csal_catalog::Catalog,
    seg: &SegmentRecord,
    target: &str,
    module: &LayeredModule,
    body: ByteStream,
) -> csal_core::Result<String> {
    let hint = key_hint(seg);
    catalog.begin_copy(&seg.id, target, &hint).await?;
    let mut meta = WriteMeta::new(&hint);
    meta.content_type = seg.content_type.clone();
    meta.metadata.insert("csal-camera".into(), seg.camera_id.clone());
    meta.metadata.insert("csal-segment".into(), seg.name.clone());
    meta.metadata.insert("csal-crc32c".into(), seg.crc32c.clone());
    let receipt = module.write(body, meta).await?;
    let crc_ok = receipt.checksum.as_ref().is_none_or(|c| c.algorithm != "crc32c" || c.value == seg.crc32c);
    if receipt.size != seg.size || !crc_ok {
        if let Err(e) = module.delete(&receipt.object_id).await {
            tracing::warn!(object = %receipt.object_id, error = %e, "cannot delete a copy that failed its check");
        }
        return Err(StorageError::new(
            csal_core::ErrorKind::Integrity,
            format!(
                "target '{target}' stored {} bytes (checksum {:?}) of a {}-byte segment",
                receipt.size, receipt.checksum, seg.size
            ),
        ));
    }
    catalog.copy_stored(&seg.id, target, &receipt.object_id).await?;
    Ok(receipt.object_id)
}

/// Look on the target for objects an earlier attempt wrote under `hint`:
/// the first whose size and CRC32C match is kept and returned, the others
/// are deleted. An error (the target is down) means "cannot tell", and the
/// caller must not write blindly.
async fn adopt_earlier_attempt(
    module: &LayeredModule,
    hint: &str,
    seg: &SegmentRecord,
) -> csal_core::Result<Option<String>> {
    let sanitized = csal_core::sanitize_hint(hint);
    let (dir, file) = sanitized.rsplit_once('/').unwrap_or(("", sanitized.as_str()));
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let mut request = ListRequest::new(dir).with_prefix(stem);
    let mut found = Vec::new();
    loop {
        let page = module.list(&request).await?;
        found.extend(page.objects);
        match page.next_page {
            Some(token) => request = request.with_continuation(Some(token)),
            None => break,
        }
    }
    let mut adopted = None;
    for object in found {
        if adopted.is_none() && object.size == seg.size && crc_of(module, &object.object_id).await? == seg.crc32c {
            adopted = Some(object.object_id);
            continue;
        }
        tracing::warn!(object = %object.object_id, "removing a leftover copy of an earlier delivery attempt");
        module.delete(&object.object_id).await?;
    }
    Ok(adopted)
}

pub(crate) async fn crc_of(module: &LayeredModule, object_id: &str) -> csal_core::Result<String> {
    let mut stream = module.read(object_id, None).await?;
    let mut crc = 0u32;
    while let Some(chunk) = stream.next().await {
        crc = csal_core::crc32c_append(crc, &chunk?);
    }
    Ok(format!("{crc:08x}"))
}
