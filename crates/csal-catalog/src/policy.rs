//! Camera storage policies (the seed's `CameraStoragePolicy.storage_targets`)
//! and [`write_for_camera`].

use csal_core::{ByteStream, ErrorKind, HealthStatus, Result, StorageError, WriteMeta};
use csal_sql::{Backend, map_sqlx};
use sqlx::{AnyConnection, Row};

use crate::Catalog;
use crate::records::{CameraWrite, check_key, now_ms};

pub(crate) async fn set_policy(catalog: &Catalog, camera_id: &str, targets: Vec<String>) -> Result<()> {
    check_key("camera id", camera_id)?;
    if targets.is_empty() {
        return Err(StorageError::invalid_input(format!(
            "the storage policy of camera '{camera_id}' needs at least one target (use delete_policy to remove it)"
        )));
    }
    for (i, t) in targets.iter().enumerate() {
        if targets[..i].contains(t) {
            return Err(StorageError::invalid_input(format!("storage target '{t}' is listed twice")));
        }
    }
    let backend = catalog.backend();
    let err = |e| map_sqlx(e, backend, "save camera storage policy");
    let mut tx = catalog.begin_write().await?;
    for t in &targets {
        let found = sqlx::query("SELECT id FROM storage_modules WHERE name = $1")
            .bind(t)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
        if found.is_none() {
            return Err(StorageError::invalid_input(format!(
                "unknown storage target '{t}' in the policy of camera '{camera_id}': no storage module has that name"
            )));
        }
    }
    let json = serde_json::to_string(&targets).unwrap_or_else(|_| "[]".to_owned());
    sqlx::query(
        "INSERT INTO camera_storage_policies (camera_id, storage_targets, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (camera_id) DO UPDATE SET storage_targets = excluded.storage_targets, \
         updated_at = excluded.updated_at",
    )
    .bind(camera_id)
    .bind(json)
    .bind(now_ms())
    .execute(&mut *tx)
    .await
    .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok(())
}

fn parse_targets(camera_id: &str, text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|_| {
        StorageError::invalid_config(format!("stored storage policy of camera '{camera_id}' is not a JSON list"))
    })
}

pub(crate) async fn get_policy(catalog: &Catalog, camera_id: &str) -> Result<Vec<String>> {
    check_key("camera id", camera_id)?;
    let backend = catalog.backend();
    let row = sqlx::query("SELECT storage_targets FROM camera_storage_policies WHERE camera_id = $1")
        .bind(camera_id)
        .fetch_optional(catalog.pool())
        .await
        .map_err(|e| map_sqlx(e, backend, "read camera storage policy"))?
        .ok_or_else(|| StorageError::not_found(format!("camera '{camera_id}' has no storage policy")))?;
    let text: String = row.try_get("storage_targets").map_err(|e| map_sqlx(e, backend, "read policy"))?;
    parse_targets(camera_id, &text)
}

pub(crate) async fn list_policies(catalog: &Catalog) -> Result<Vec<(String, Vec<String>)>> {
    let backend = catalog.backend();
    let mut conn = catalog.pool().acquire().await.map_err(|e| map_sqlx(e, backend, "list policies"))?;
    all_policies(&mut conn, backend).await
}

async fn all_policies(conn: &mut AnyConnection, backend: Backend) -> Result<Vec<(String, Vec<String>)>> {
    let err = |e| map_sqlx(e, backend, "list camera storage policies");
    let rows = sqlx::query("SELECT camera_id, storage_targets FROM camera_storage_policies ORDER BY camera_id")
        .fetch_all(&mut *conn)
        .await
        .map_err(err)?;
    rows.iter()
        .map(|r| {
            let camera: String = r.try_get("camera_id").map_err(err)?;
            let text: String = r.try_get("storage_targets").map_err(err)?;
            let targets = parse_targets(&camera, &text)?;
            Ok((camera, targets))
        })
        .collect()
}

/// Cameras whose policy names `target`.
pub(crate) async fn cameras_using(conn: &mut AnyConnection, backend: Backend, target: &str) -> Result<Vec<String>> {
    Ok(all_policies(conn, backend)
        .await?
        .into_iter()
        .filter(|(_, targets)| targets.iter().any(|t| t == target))
        .map(|(camera, _)| camera)
        .collect())
}

pub(crate) async fn delete_policy(catalog: &Catalog, camera_id: &str) -> Result<()> {
    check_key("camera id", camera_id)?;
    let backend = catalog.backend();
    let err = |e| map_sqlx(e, backend, "delete camera storage policy");
    let mut tx = catalog.begin_write().await?;
    sqlx::query("DELETE FROM camera_storage_policies WHERE camera_id = $1")
        .bind(camera_id)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    tx.commit().await.map_err(err)?;
    Ok(())
}

/// Whether a failed write on one target should move on to the next.
/// Everything about the target (down, throttled, full, credentials,
/// disabled, other permanent provider failures) fails over; errors about
/// the request itself (a bad key hint, a body that broke or came up short)
/// would fail the same way everywhere and are returned at once.
fn fails_over(e: &StorageError) -> bool {
    !matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Integrity)
}

/// Write `body` for `camera_id` through its policy's targets, in order:
///
/// 1. targets that are missing, disabled or failed to load are skipped
///    before any byte is read;
/// 2. targets whose last health check said `offline` are tried only after
///    all the others;
/// 3. a write that fails on a target (see `fails_over`) moves on to the
///    next one **only if the body can be replayed** (`ByteStream::try_clone`,
///    true for bytes in memory and files); a one-shot stream has been
///    consumed by the failed attempt, so that error is returned.
///
/// The result names the target that took the write and every target passed
/// over, with the reason.
pub(crate) async fn write_for_camera(
    catalog: &Catalog,
    camera_id: &str,
    body: ByteStream,
    meta: WriteMeta,
) -> Result<CameraWrite> {
    let targets = get_policy(catalog, camera_id).await?;
    let router = catalog.router();
    let mut skipped: Vec<(String, String)> = Vec::new();
    let mut healthy = Vec::new();
    let mut last_resort = Vec::new();
    for target in &targets {
        match router.module(target) {
            Err(e) => skipped.push((target.clone(), e.message().to_owned())),
            Ok(module) => match module.last_health() {
                Some(h) if h.status == HealthStatus::Offline => last_resort.push((target.clone(), module)),
                _ => healthy.push((target.clone(), module)),
            },
        }
    }
    let candidates: Vec<_> = healthy.into_iter().chain(last_resort).collect();
    let mut body = Some(body);
    let mut last_error: Option<StorageError> = None;
    let count = candidates.len();
    for (i, (target, module)) in candidates.into_iter().enumerate() {
        let Some(current) = body.take() else { break };
        let spare = if i + 1 < count { current.try_clone() } else { None };
        match csal_core::StorageModule::write(&*module, current, meta.clone()).await {
            Ok(mut receipt) => {
                if receipt.instance.is_none() {
                    receipt.instance = Some(target.clone());
                }
                if !skipped.is_empty() {
                    tracing::warn!(camera = %camera_id, target = %target, skipped = skipped.len(), "recording failed over");
                }
                return Ok(CameraWrite { target, receipt, skipped });
            }
            Err(e) if fails_over(&e) && spare.is_some() => {
                tracing::warn!(camera = %camera_id, target = %target, error = %e, "write failed; trying the next target");
                skipped.push((target, e.to_string()));
                body = spare;
                last_error = Some(e);
            }
            Err(e) if fails_over(&e) && i + 1 < count => {
                return Err(StorageError::new(
                    e.kind(),
                    format!(
                        "write for camera '{camera_id}' failed on '{target}' and the body cannot be replayed to the \
                         next target: {}",
                        e.message()
                    ),
                )
                .with_source(e));
            }
            Err(e) if fails_over(&e) => {
                skipped.push((target, e.to_string()));
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    let reasons: Vec<String> = skipped.iter().map(|(t, r)| format!("{t}: {r}")).collect();
    let mut err = StorageError::new(
        ErrorKind::Unavailable,
        format!("no storage target of camera '{camera_id}' took the write ({})", reasons.join("; ")),
    );
    if let Some(e) = last_error {
        err = err.with_source(e);
    }
    Err(err)
}
