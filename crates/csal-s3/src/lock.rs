//! S3 Object Lock: legal holds and retention that S3 itself enforces.
//!
//! Object Lock can only be turned on when a bucket is created, and it turns
//! versioning on. So on an Object Lock bucket (`object_lock`) a plain
//! DeleteObject would only add a delete marker and leave the bytes (and
//! their cost) behind: deletes here remove every version of the key
//! instead, which S3 refuses for a version under a legal hold or an
//! unexpired retention. That refusal is an `AccessDenied`, the same code as
//! a missing permission; the version's lock headers tell them apart, and a
//! lock becomes [`ErrorKind::Locked`] (permanent, not retried) naming it.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::types::{ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention};
use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use csal_core::{ErrorKind, Result, StorageError};

use crate::client::S3Client;
use crate::config::S3Config;
use crate::error::map_sdk_error;

/// The lock headers every new object gets (`object_lock_legal_hold`,
/// `object_lock_mode` + `object_lock_days`).
pub(crate) struct WriteLock {
    legal_hold: bool,
    retention: Option<(ObjectLockMode, Duration)>,
}

impl WriteLock {
    pub(crate) fn new(config: &S3Config) -> Self {
        let retention = match (&config.object_lock_mode, config.object_lock_days) {
            (Some(mode), Some(days)) => Some((ObjectLockMode::from(mode.as_str()), Duration::from_secs(days * 86_400))),
            _ => None,
        };
        WriteLock { legal_hold: config.object_lock_legal_hold, retention }
    }

    /// Whether new objects get any lock header.
    pub(crate) fn locks_writes(&self) -> bool {
        self.legal_hold || self.retention.is_some()
    }

    pub(crate) fn legal_hold(&self) -> Option<ObjectLockLegalHoldStatus> {
        self.legal_hold.then_some(ObjectLockLegalHoldStatus::On)
    }

    pub(crate) fn mode(&self) -> Option<ObjectLockMode> {
        self.retention.as_ref().map(|(mode, _)| mode.clone())
    }

    /// Retained until `object_lock_days` from now (computed per write).
    pub(crate) fn retain_until(&self) -> Option<DateTime> {
        self.retention.as_ref().map(|(_, keep)| DateTime::from(SystemTime::now() + *keep))
    }
}

/// Make sure a multipart upload's object carries the locks the instance
/// asks for. S3 takes them from CreateMultipartUpload's headers, but some
/// servers (moto, and S3-compatible ones) drop them there without an
/// error: evidence must not stay unprotected, so what is missing is put
/// on with PutObjectLegalHold / PutObjectRetention.
pub(crate) async fn ensure_locked(client: &S3Client, lock: &WriteLock, object_id: &str) -> Result<()> {
    if !lock.locks_writes() {
        return Ok(());
    }
    let what = format!("lock '{object_id}'");
    let key = client.key(object_id);
    let head =
        client.sdk.head_object().bucket(&client.bucket).key(&key).send().await.map_err(|e| map_sdk_error(e, &what))?;
    if lock.legal_hold && head.object_lock_legal_hold_status() != Some(&ObjectLockLegalHoldStatus::On) {
        set_legal_hold(client, object_id, true).await?;
    }
    if let (Some(mode), Some(until), None) = (lock.mode(), lock.retain_until(), head.object_lock_retain_until_date()) {
        let retention = ObjectLockRetention::builder().mode(mode.as_str().into()).retain_until_date(until).build();
        client
            .sdk
            .put_object_retention()
            .bucket(&client.bucket)
            .key(&key)
            .retention(retention)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &format!("{what} (retention)")))?;
    }
    Ok(())
}

/// Put an S3 legal hold on the object's current version, or lift it.
pub(crate) async fn set_legal_hold(client: &S3Client, object_id: &str, hold: bool) -> Result<()> {
    let status = if hold { ObjectLockLegalHoldStatus::On } else { ObjectLockLegalHoldStatus::Off };
    client
        .sdk
        .put_object_legal_hold()
        .bucket(&client.bucket)
        .key(client.key(object_id))
        .legal_hold(ObjectLockLegalHold::builder().status(status).build())
        .send()
        .await
        .map_err(|e| map_sdk_error(e, &format!("set the legal hold of '{object_id}'")))?;
    Ok(())
}

/// Delete every version (and delete marker) of the object's key; a missing
/// key is success. A version S3 keeps because of its lock fails the delete
/// with [`ErrorKind::Locked`].
pub(crate) async fn delete_versions(client: &S3Client, object_id: &str) -> Result<()> {
    let key = client.key(object_id);
    let what = format!("delete '{object_id}'");
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = client
            .sdk
            .list_object_versions()
            .bucket(&client.bucket)
            .prefix(&key)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| map_sdk_error(e, &format!("{what} (list versions)")))?;
        let mut ids: Vec<String> = Vec::new();
        for v in page.versions() {
            if v.key() == Some(key.as_str()) {
                ids.extend(v.version_id().map(str::to_owned));
            }
        }
        for m in page.delete_markers() {
            if m.key() == Some(key.as_str()) {
                ids.extend(m.version_id().map(str::to_owned));
            }
        }
        for version in &ids {
            delete_version(client, &key, version, &what).await?;
        }
        if page.is_truncated() != Some(true) {
            return Ok(());
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
        if key_marker.as_deref().is_none_or(|k| k != key) {
            return Ok(()); // past our key: the rest are other objects under the same prefix
        }
    }
}

async fn delete_version(client: &S3Client, key: &str, version: &str, what: &str) -> Result<()> {
    let result = client.sdk.delete_object().bucket(&client.bucket).key(key).version_id(version).send().await;
    let err = match result {
        Ok(_) => return Ok(()),
        Err(e) => map_sdk_error(e, what),
    };
    if err.is_not_found() {
        return Ok(());
    }
    if err.kind() != ErrorKind::Auth {
        return Err(err);
    }
    match lock_of(client, key, version).await {
        Some(lock) => Err(StorageError::new(ErrorKind::Locked, format!("{what}: S3 keeps it: {lock}"))),
        None => Err(err),
    }
}

/// What locks one version, from its HEAD (`None`: nothing, or unknown).
async fn lock_of(client: &S3Client, key: &str, version: &str) -> Option<String> {
    let head = client.sdk.head_object().bucket(&client.bucket).key(key).version_id(version).send().await.ok()?;
    if head.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On) {
        return Some("it is under a legal hold (lift it first)".into());
    }
    let until = head.object_lock_retain_until_date()?;
    if SystemTime::try_from(*until).ok()? <= SystemTime::now() {
        return None;
    }
    let mode = head.object_lock_mode().map_or("retention", |m| m.as_str());
    let until = until.fmt(Format::DateTime).unwrap_or_default();
    Some(format!("{mode} retention until {until}"))
}
