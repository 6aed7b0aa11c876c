//! Camera storage policies (the seed's `CameraStoragePolicy.storage_targets`)
//! and [`write_for_camera`].

use csal_core::{ByteStream, ErrorKind, HealthStatus, Result, StorageError, WriteMeta};
use csal_sql::{Backend, map_sqlx};
use sqlx::{AnyConnection, Row};

use crate::Catalog;
use crate::records::{CameraWrite, check_key, now_ms};

/// A camera's storage policy: where its recordings go, in order of
/// preference, on how many distinct targets each must land, and how long
/// they are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CameraPolicy {
    /// Storage instance names, most preferred first.
    pub targets: Vec<String>,
    /// Distinct targets each segment must reach (1 ..= targets).
    #[serde(default = "one")]
    pub copies: u32,
    /// Delete every copy of a segment this many days after it ended
    /// (`None`: keep until `max_bytes` or forever).
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Keep at most this many bytes of the camera's segments (each segment
    /// counted once per stored copy), deleting the oldest first.
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// Per target: delete that target's copy this many days after the
    /// segment ended (e.g. 7 days on the NVR's disk, 90 in the cloud).
    #[serde(default)]
    pub keep_days: std::collections::BTreeMap<String, u32>,
    /// Tiering: move copies from one target to another after some days
    /// (run by the retention sweep).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierRule>,
}

fn one() -> u32 {
    1
}

/// "After `after_days` days, move the segment's copy on `from` to `to`":
/// copy, verify against the indexed CRC32C, index the new copy, then delete
/// the old one. Written `from>to@days` (module names have no `>` or `@`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TierRule {
    /// The target copies move from.
    pub from: String,
    /// The target they move to.
    pub to: String,
    /// Age (days since the segment started) at which a copy moves.
    pub after_days: u32,
}

impl TierRule {
    /// `from>to@after_days`.
    pub fn new(from: &str, to: &str, after_days: u32) -> Self {
        TierRule { from: from.to_owned(), to: to.to_owned(), after_days }
    }

    /// Parse `from>to@days` (the CLI's `--tier` and the admin form's field).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || StorageError::invalid_input(format!("tier rule '{text}' must look like 'nas>cloud@30'"));
        let (targets, days) = text.trim().rsplit_once('@').ok_or_else(bad)?;
        let (from, to) = targets.split_once('>').ok_or_else(bad)?;
        let after_days = days.trim().parse().map_err(|_| bad())?;
        Ok(TierRule::new(from.trim(), to.trim(), after_days))
    }
}

impl std::fmt::Display for TierRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}>{}@{}", self.from, self.to, self.after_days)
    }
}

impl CameraPolicy {
    /// "30 days, at most 2.0 TiB, local: 7 days", or "forever".
    pub fn retention_text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = self.retention_days {
            parts.push(format!("{d} days"));
        }
        if let Some(b) = self.max_bytes {
            parts.push(format!("at most {}", csal_core::human_bytes(b)));
        }
        for (t, d) in &self.keep_days {
            parts.push(format!("{t}: {d} days"));
        }
        for rule in &self.tiers {
            parts.push(format!("{} to {} after {} days", rule.from, rule.to, rule.after_days));
        }
        if parts.is_empty() { "forever".into() } else { parts.join(", ") }
    }

    /// Targets in order, one copy, kept forever.
    pub fn new(targets: Vec<String>) -> Self {
        CameraPolicy { targets, copies: 1, ..Default::default() }
    }

    /// Require `copies` distinct targets per segment.
    pub fn with_copies(mut self, copies: u32) -> Self {
        self.copies = copies;
        self
    }

    /// Keep segments `days` days.
    pub fn with_retention_days(mut self, days: u32) -> Self {
        self.retention_days = Some(days);
        self
    }

    /// Keep `target`'s copies `days` days.
    pub fn with_keep_days(mut self, target: &str, days: u32) -> Self {
        self.keep_days.insert(target.to_owned(), days);
        self
    }

    /// Move `from`'s copies to `to` after `days` days (see [`TierRule`]).
    pub fn with_tier(mut self, from: &str, to: &str, days: u32) -> Self {
        self.tiers.push(TierRule::new(from, to, days));
        self
    }

    /// Whether any rule ever deletes this camera's segments.
    pub fn has_retention(&self) -> bool {
        self.retention_days.is_some() || self.max_bytes.is_some() || !self.keep_days.is_empty()
    }
}

impl From<Vec<String>> for CameraPolicy {
    fn from(targets: Vec<String>) -> Self {
        CameraPolicy::new(targets)
    }
}

pub(crate) async fn set_policy(catalog: &Catalog, camera_id: &str, policy: CameraPolicy) -> Result<()> {
    check_key("camera id", camera_id)?;
    let CameraPolicy { targets, copies, retention_days, max_bytes, keep_days, tiers } = policy;
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
    for rule in &tiers {
        if !targets.contains(&rule.from) || rule.from == rule.to || rule.after_days == 0 {
            return Err(StorageError::invalid_input(format!(
                "tier rule '{rule}' of camera '{camera_id}' must move from one of its targets to another \
                 storage module after at least 1 day"
            )));
        }
    }
    let mut tx = catalog.begin_write().await?;
    for t in targets.iter().chain(tiers.iter().map(|r| &r.to)) {
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
    if copies == 0 || copies as usize > targets.len() {
        return Err(StorageError::invalid_input(format!(
            "the storage policy of camera '{camera_id}' asks for {copies} copies of each segment but names {} \
             target(s); copies must be 1 to the number of targets",
            targets.len()
        )));
    }
    if let Some(t) = keep_days.keys().find(|t| !targets.contains(t)) {
        return Err(StorageError::invalid_input(format!(
            "keep_days names '{t}', which is not a target of the policy of camera '{camera_id}'"
        )));
    }
    if retention_days == Some(0) || keep_days.values().any(|d| *d == 0) {
        return Err(StorageError::invalid_input("retention and keep_days must be at least 1 day"));
    }
    let max_bytes = match max_bytes.map(i64::try_from) {
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => return Err(StorageError::invalid_input("max_bytes must be between 1 and 2^63")),
        None => None,
    };
    let json = serde_json::to_string(&targets).unwrap_or_else(|_| "[]".to_owned());
    let keep_json = (!keep_days.is_empty()).then(|| serde_json::to_string(&keep_days).unwrap_or_default());
    let tier_json = (!tiers.is_empty()).then(|| serde_json::to_string(&tiers).unwrap_or_default());
    sqlx::query(
        "INSERT INTO camera_storage_policies \
         (camera_id, storage_targets, copies, retention_days, max_bytes, keep_days, tier_rules, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (camera_id) DO UPDATE SET storage_targets = excluded.storage_targets, \
         copies = excluded.copies, retention_days = excluded.retention_days, max_bytes = excluded.max_bytes, \
         keep_days = excluded.keep_days, tier_rules = excluded.tier_rules, updated_at = excluded.updated_at",
    )
    .bind(camera_id)
    .bind(json)
    .bind(i64::from(copies))
    .bind(retention_days.map(i64::from))
    .bind(max_bytes)
    .bind(keep_json)
    .bind(tier_json)
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

const POLICY_COLS: &str = "camera_id, storage_targets, copies, retention_days, max_bytes, keep_days, tier_rules";

fn parse_policy(row: &sqlx::any::AnyRow, backend: Backend) -> Result<(String, CameraPolicy)> {
    let err = |e| map_sqlx(e, backend, "read camera storage policy");
    let camera: String = row.try_get("camera_id").map_err(err)?;
    let text: String = row.try_get("storage_targets").map_err(err)?;
    let copies: i64 = row.try_get("copies").map_err(err)?;
    let retention_days: Option<i64> = row.try_get("retention_days").map_err(err)?;
    let max_bytes: Option<i64> = row.try_get("max_bytes").map_err(err)?;
    let keep_days = json_column(row, "keep_days", &camera, backend)?;
    let tiers = json_column(row, "tier_rules", &camera, backend)?;
    let targets = parse_targets(&camera, &text)?;
    let policy = CameraPolicy {
        targets,
        copies: u32::try_from(copies.max(1)).unwrap_or(1),
        retention_days: retention_days.and_then(|d| u32::try_from(d).ok()),
        max_bytes: max_bytes.and_then(|b| u64::try_from(b).ok()),
        keep_days,
        tiers,
    };
    Ok((camera, policy))
}

/// A nullable JSON column of a policy row (NULL or empty: the default value).
fn json_column<T: serde::de::DeserializeOwned + Default>(
    row: &sqlx::any::AnyRow,
    column: &str,
    camera: &str,
    backend: Backend,
) -> Result<T> {
    let text: Option<String> = row.try_get(column).map_err(|e| map_sqlx(e, backend, "read camera storage policy"))?;
    match text.filter(|t| !t.is_empty()) {
        Some(t) => serde_json::from_str(&t).map_err(|_| {
            StorageError::invalid_config(format!("stored {column} of camera '{camera}' is not valid JSON of its kind"))
        }),
        None => Ok(T::default()),
    }
}

/// The camera id of the default policy: it applies to every camera that
/// has no policy of its own (set it like any other: `set_policy("*", ..)`).
pub const DEFAULT_POLICY: &str = "*";

pub(crate) async fn get_policy(catalog: &Catalog, camera_id: &str) -> Result<CameraPolicy> {
    Ok(policy_in_effect(catalog, camera_id).await?.1)
}

/// The policy that applies to a camera, and whose it is: the camera's own
/// id, or [`DEFAULT_POLICY`] when it has none.
pub(crate) async fn policy_in_effect(catalog: &Catalog, camera_id: &str) -> Result<(String, CameraPolicy)> {
    check_key("camera id", camera_id)?;
    let backend = catalog.backend();
    let rows = sqlx::query(&format!(
        "SELECT {POLICY_COLS} FROM camera_storage_policies WHERE camera_id = $1 OR camera_id = $2"
    ))
    .bind(camera_id)
    .bind(DEFAULT_POLICY)
    .fetch_all(catalog.pool())
    .await
    .map_err(|e| map_sqlx(e, backend, "read camera storage policy"))?;
    let mut found = rows.iter().map(|r| parse_policy(r, backend)).collect::<Result<Vec<_>>>()?;
    // The camera's own policy wins over the default.
    found.sort_by_key(|(camera, _)| camera == DEFAULT_POLICY);
    found.into_iter().next().ok_or_else(|| {
        StorageError::not_found(format!(
            "camera '{camera_id}' has no storage policy and no default policy ('{DEFAULT_POLICY}') is set"
        ))
    })
}

/// Every camera that has its own policy or recordings in the index, with
/// the policy that applies to it (a camera with recordings but neither
/// its own nor a default policy is left out). What retention and fsck walk.
pub(crate) async fn policies_in_effect(catalog: &Catalog) -> Result<Vec<AppliedPolicy>> {
    let backend = catalog.backend();
    let mut conn = catalog.pool().acquire().await.map_err(|e| map_sqlx(e, backend, "list policies"))?;
    let mut own = all_policies(&mut conn, backend).await?;
    let default = own.iter().position(|(c, _)| c == DEFAULT_POLICY).map(|i| own.remove(i).1);
    let mut applied: Vec<AppliedPolicy> =
        own.into_iter().map(|(camera_id, policy)| AppliedPolicy { camera_id, policy, is_default: false }).collect();
    if let Some(default) = default {
        let recorded: Vec<String> = sqlx::query_scalar("SELECT DISTINCT camera_id FROM segments")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| map_sqlx(e, backend, "list recorded cameras"))?;
        for camera_id in recorded {
            if !applied.iter().any(|a| a.camera_id == camera_id) {
                applied.push(AppliedPolicy { camera_id, policy: default.clone(), is_default: true });
            }
        }
        applied.sort_by(|a, b| a.camera_id.cmp(&b.camera_id));
    }
    Ok(applied)
}

/// A camera and the policy that applies to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppliedPolicy {
    /// The camera.
    pub camera_id: String,
    /// Its policy, or the default one.
    pub policy: CameraPolicy,
    /// The default policy (`*`) applies: the camera has none of its own.
    pub is_default: bool,
}

pub(crate) async fn list_policies(catalog: &Catalog) -> Result<Vec<(String, CameraPolicy)>> {
    let backend = catalog.backend();
    let mut conn = catalog.pool().acquire().await.map_err(|e| map_sqlx(e, backend, "list policies"))?;
    all_policies(&mut conn, backend).await
}

async fn all_policies(conn: &mut AnyConnection, backend: Backend) -> Result<Vec<(String, CameraPolicy)>> {
    let rows = sqlx::query(&format!("SELECT {POLICY_COLS} FROM camera_storage_policies ORDER BY camera_id"))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| map_sqlx(e, backend, "list camera storage policies"))?;
    rows.iter().map(|r| parse_policy(r, backend)).collect()
}

/// Cameras whose policy names `target`.
pub(crate) async fn cameras_using(conn: &mut AnyConnection, backend: Backend, target: &str) -> Result<Vec<String>> {
    Ok(all_policies(conn, backend)
        .await?
        .into_iter()
        .filter(|(_, policy)| policy.targets.iter().chain(policy.tiers.iter().map(|r| &r.to)).any(|t| t == target))
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
    let targets = get_policy(catalog, camera_id).await?.targets;
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

impl Catalog {
    // --------------------------------------------------------------- policies

    /// Set a camera's ordered storage targets (instance names) and how many
    /// of them must hold each segment (a `Vec<String>` means one copy).
    /// Every name must exist now and `copies` be 1 ..= targets
    /// (`InvalidInput` otherwise).
    pub async fn set_policy(&self, camera_id: &str, policy: impl Into<CameraPolicy>) -> Result<()> {
        set_policy(self, camera_id, policy.into()).await
    }

    /// The storage policy that applies to a camera: its own, else the
    /// default ([`DEFAULT_POLICY`]); `NotFound` when neither is set.
    pub async fn get_policy(&self, camera_id: &str) -> Result<CameraPolicy> {
        get_policy(self, camera_id).await
    }

    /// Every camera policy, by camera id.
    pub async fn list_policies(&self) -> Result<Vec<(String, CameraPolicy)>> {
        list_policies(self).await
    }

    /// The policy that applies to a camera and whose it is (the camera's
    /// own id, or [`DEFAULT_POLICY`]).
    pub async fn policy_in_effect(&self, camera_id: &str) -> Result<(String, CameraPolicy)> {
        policy_in_effect(self, camera_id).await
    }

    /// Every camera with its own policy or with recordings, and the policy
    /// that applies to it (the default for recorded cameras without one).
    pub async fn policies_in_effect(&self) -> Result<Vec<AppliedPolicy>> {
        policies_in_effect(self).await
    }

    /// Remove a camera's policy (removing a missing one succeeds).
    pub async fn delete_policy(&self, camera_id: &str) -> Result<()> {
        delete_policy(self, camera_id).await
    }

    /// Write a recording to the camera's first usable target, failing over
    /// to the next:
    ///
    /// 1. targets that are missing, disabled or failed to load are skipped
    ///    before any byte of `body` is read;
    /// 2. targets whose last health check said `offline` are tried last;
    /// 3. a failed write moves on to the next target unless the error is
    ///    about the request itself (`InvalidInput`, `Integrity`);
    /// 4. a failed attempt has consumed the body, so fail-over needs a
    ///    replayable body (`body.try_clone()` is `Some`: bytes, files); with
    ///    a one-shot stream the error says the body cannot be replayed.
    ///
    /// `NotFound` if the camera has no policy; `Unavailable` listing every
    /// target's reason if none took the write.
    pub async fn write_for_camera(
        &self,
        camera_id: &str,
        body: csal_core::ByteStream,
        meta: csal_core::WriteMeta,
    ) -> Result<CameraWrite> {
        write_for_camera(self, camera_id, body, meta).await
    }
}
