//! Health rounds: every ready module checked at once, optionally on a
//! timer (so an embedded catalog keeps `write_for_camera`'s "offline
//! targets last" fresh without `csal serve`), plus the write canary.
//!
//! Canary checks: a module whose health check only proves it answers (a
//! HEAD, a quota call) can still refuse writes (a full bucket, a revoked
//! write permission, a read-only mount). With the canary on, every health
//! round also writes a small object, reads it back, compares and deletes
//! it; a failure marks the module offline with the step that failed, so
//! recording fails over before a segment hits it.

use std::time::Duration;

use csal_core::{ByteStream, HealthStatus, InstanceStatus, Result, StorageModule, WriteMeta};
use futures::StreamExt;

use crate::Catalog;

/// Setting key prefix: `canary:{module}` = `on`.
const SETTING_PREFIX: &str = "canary:";
/// Where canary objects go (ids never collide: each gets a ULID).
const KEY_HINT: &str = "csal-canary/probe.bin";

impl Catalog {
    /// One round: health-check every ready module concurrently, then run
    /// the write canary of those that have it on (amending their reports).
    pub async fn check_health_now(&self) {
        let router = self.router();
        let ready: Vec<String> =
            router.instances().into_iter().filter(|i| i.status == InstanceStatus::Ready).map(|i| i.name).collect();
        let checks = ready.iter().map(|n| router.health_check(n));
        for (name, result) in ready.iter().zip(futures::future::join_all(checks).await) {
            if let Ok(report) = result {
                tracing::debug!(instance = %name, status = report.status.as_str(), "health check");
            }
        }
        let mut canaries = Vec::new();
        for name in ready {
            if self.canary_enabled(&name).await.unwrap_or(false) {
                canaries.push(name);
            }
        }
        let runs = canaries.iter().map(|n| self.run_canary(n));
        for (name, result) in canaries.iter().zip(futures::future::join_all(runs).await) {
            if let Err(e) = result {
                tracing::warn!(instance = %name, error = %e, "canary failed");
            }
        }
    }

    /// Opt-in for embedded use: a health round now and every `interval`
    /// until the returned task is aborted (`csal serve` runs its own, which
    /// adds the capacity forecast).
    pub fn spawn_health_checks(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let catalog = self.clone();
        tokio::spawn(async move {
            loop {
                catalog.check_health_now().await;
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// Turn the canary of a module on or off (the module must exist).
    pub async fn set_canary(&self, module: &str, on: bool) -> Result<()> {
        let record = self.get_module(module).await?;
        let key = format!("{SETTING_PREFIX}{}", record.name);
        if on { self.set_setting(&key, "on", false).await } else { self.delete_setting(&key).await }
    }

    /// Whether the write canary is on for `module`.
    pub async fn canary_enabled(&self, module: &str) -> Result<bool> {
        Ok(self.get_setting(&format!("{SETTING_PREFIX}{module}")).await?.is_some())
    }

    /// The Test button and `csal module test`: validate and health-check
    /// the module, then, if its canary is on (or `force_canary`), write,
    /// read back and delete a small object. The report says how it went.
    pub async fn test_module(&self, module: &str, force_canary: bool) -> Result<csal_core::HealthReport> {
        let report = self.router().test(module).await?;
        if !(force_canary || self.canary_enabled(module).await?) {
            return Ok(report);
        }
        let _ = self.run_canary(module).await;
        Ok(self.router().module(module)?.last_health().unwrap_or(report))
    }

    /// Write, read back and delete a small object on `module` now. On a
    /// failure the module's last health report turns offline with the
    /// reason (the next health check starts afresh) and the error is
    /// returned.
    pub async fn run_canary(&self, module: &str) -> Result<()> {
        let layered = self.router().module(module)?;
        let outcome = probe(&*layered).await;
        if let Err(e) = &outcome {
            let reason = format!("canary failed: {e}");
            layered.amend_last_health(|h| {
                h.status = HealthStatus::Offline;
                h.last_error = Some(reason);
            });
        } else {
            layered.amend_last_health(|h| {
                h.details.insert("canary".into(), "ok".into());
            });
        }
        outcome
    }
}

async fn probe(module: &dyn StorageModule) -> Result<()> {
    let payload = format!("csal canary {}", ulid::Ulid::new()).into_bytes();
    let body = ByteStream::from_bytes(payload.clone());
    let receipt = module.write(body, WriteMeta::new(KEY_HINT)).await?;
    let read: Result<()> = async {
        let mut stream = module.read(&receipt.object_id, None).await?;
        let mut back = Vec::with_capacity(payload.len());
        while let Some(chunk) = stream.next().await {
            back.extend_from_slice(&chunk?);
            if back.len() > payload.len() {
                break;
            }
        }
        if back != payload {
            return Err(csal_core::StorageError::integrity("the object read back differs from what was written"));
        }
        Ok(())
    }
    .await;
    // Delete even when the read failed: no canary is left behind.
    let deleted = module.delete(&receipt.object_id).await;
    read.and(deleted)
}
