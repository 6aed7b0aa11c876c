//! Listing: ListObjectsV2 pages with S3's own continuation tokens.
//!
//! Flat (no delimiter) under `prefix + path/ + request prefix`. The time
//! window is filtered on the client (S3 cannot), so a page can hold fewer
//! objects than `limit` while `next_page` is still set.

use csal_core::{ListPage, ListRequest, ObjectMeta, Result};

use crate::client::{S3Client, to_system_time};
use crate::error::map_sdk_error;

/// S3's largest page.
const MAX_KEYS: usize = 1000;

pub(crate) async fn list(client: &S3Client, request: &ListRequest) -> Result<ListPage> {
    let prefix = client.key(&request.id_prefix());
    let limit = request.limit.unwrap_or(MAX_KEYS).clamp(1, MAX_KEYS);
    let out = client
        .sdk
        .list_objects_v2()
        .bucket(&client.bucket)
        .prefix(prefix)
        .max_keys(limit as i32)
        .set_continuation_token(request.continuation.clone())
        .send()
        .await
        .map_err(|e| map_sdk_error(e, "list"))?;
    let mut page = ListPage::default();
    for obj in out.contents() {
        let Some(id) = obj.key().and_then(|k| client.object_id(k)) else { continue };
        // Keys that are not valid object ids (written by other tools: "a//b",
        // "dir/") cannot be read through CSAL; leave them out.
        if csal_core::check_object_id(id).is_err() {
            continue;
        }
        let mut meta = ObjectMeta::new(id, obj.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0));
        meta.modified = obj.last_modified().and_then(to_system_time);
        meta.etag = obj.e_tag().map(|e| e.trim_matches('"').to_owned());
        if request.matches_time(&meta) {
            page.objects.push(meta);
        }
    }
    let truncated = out.is_truncated().unwrap_or(false);
    page.next_page = match out.next_continuation_token() {
        Some(token) if truncated && !token.is_empty() => Some(token.to_owned()),
        _ => None,
    };
    Ok(page)
}
