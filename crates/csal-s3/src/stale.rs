//! Multipart uploads a writer never finished (killed mid-upload: its abort
//! guard never ran). S3 keeps their parts, billed, until they are aborted
//! or a bucket lifecycle rule expires them; `list` does not show them.
//!
//! Those under the instance's prefix started longer ago than
//! `stale_upload_hours` are counted (bytes from ListParts, 0 where the
//! server cannot tell) and, when asked, aborted. A live upload of this instance is younger than that age.

use std::time::{Duration, SystemTime};

use csal_core::{Result, StaleUploads};

use crate::client::{S3Client, to_system_time};
use crate::error::map_sdk_error;

/// Count (and with `remove`, abort) the multipart uploads under the prefix
/// started more than `age` ago (zero: all of them, whatever the server's
/// clock says).
pub(crate) async fn sweep(client: &S3Client, age: Duration, remove: bool) -> Result<StaleUploads> {
    let cutoff = SystemTime::now().checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut found = StaleUploads::default();
    let (mut key_marker, mut upload_marker) = (None, None);
    loop {
        let page = client
            .sdk
            .list_multipart_uploads()
            .bucket(&client.bucket)
            .prefix(&client.key_prefix)
            .set_key_marker(key_marker.take())
            .set_upload_id_marker(upload_marker.take())
            .send()
            .await
            .map_err(|e| map_sdk_error(e, "list unfinished multipart uploads"))?;
        for upload in page.uploads() {
            let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else { continue };
            // An upload without a start time is never taken for stale.
            let started = upload.initiated().and_then(to_system_time);
            if !age.is_zero() && started.is_none_or(|started| started >= cutoff) {
                continue;
            }
            found.count += 1;
            match uploaded_bytes(client, key, id).await {
                Ok(bytes) => found.bytes += bytes,
                // Sizes are for the report; an answer we cannot read (moto
                // names ListParts' root element wrongly) must not keep the
                // upload from being aborted.
                Err(e) => tracing::warn!(key, error = %e, "cannot size an unfinished upload; counting 0 bytes"),
            }
            if remove {
                crate::write::abort(&client.sdk, &client.bucket, key, id).await?;
                tracing::info!(key, "aborted a stale multipart upload");
                found.removed += 1;
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(found);
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        upload_marker = page.next_upload_id_marker().map(str::to_owned);
        if key_marker.is_none() && upload_marker.is_none() {
            return Ok(found);
        }
    }
}

/// Bytes of the parts an upload holds.
async fn uploaded_bytes(client: &S3Client, key: &str, upload_id: &str) -> Result<u64> {
    let mut bytes = 0;
    let mut marker = None;
    loop {
        let page = client
            .sdk
            .list_parts()
            .bucket(&client.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_part_number_marker(marker.take())
            .send()
            .await;
        let page = match page {
            Ok(p) => p,
            // Finished or aborted since it was listed: nothing left.
            Err(e) => {
                let err = map_sdk_error(e, "list the parts of an unfinished upload");
                return if err.is_not_found() { Ok(bytes) } else { Err(err) };
            }
        };
        bytes += page.parts().iter().filter_map(|p| p.size()).map(|s| u64::try_from(s).unwrap_or(0)).sum::<u64>();
        match (page.is_truncated(), page.next_part_number_marker()) {
            (Some(true), Some(next)) => marker = Some(next.to_owned()),
            _ => return Ok(bytes),
        }
    }
}
