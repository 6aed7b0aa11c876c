//! Listing: `/2/files/list_folder` (recursive) and `/list_folder/continue`.
//! The continuation token is Dropbox's cursor; prefix and time filters are
//! applied here (Dropbox lists folders, not key prefixes), so a page can
//! hold fewer objects than the limit, or none, and still have a next page.

use csal_core::{ListPage, ListRequest, Result};
use serde_json::{Value, json};

use crate::client::{Call, DropboxClient, Host};
use crate::error::{ApiError, classify};
use crate::read::meta_from;

/// Dropbox accepts a `limit` of 1..=2000.
const MAX_LIMIT: usize = 2000;

pub(crate) async fn list(client: &DropboxClient, request: &ListRequest) -> Result<ListPage> {
    let what = format!("list '{}'", request.path);
    let limit = request.limit.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT);
    let (endpoint, arg) = match &request.continuation {
        Some(cursor) => ("files/list_folder/continue", json!({ "cursor": cursor })),
        None => (
            "files/list_folder",
            json!({ "path": client.folder_of(&request.path), "recursive": true, "limit": limit,
                    "include_deleted": false }),
        ),
    };
    let call = Call { host: Host::Api, endpoint, arg: &arg, body: bytes::Bytes::new(), range: None };
    let answer = match client.send(&call, &what).await? {
        Ok(resp) => resp.bytes().await.map_err(|e| crate::error::transport(e, &what))?,
        // A folder that does not exist (yet) holds no objects.
        Err(e) if request.continuation.is_none() && is_missing_folder(&e) => return Ok(ListPage::default()),
        Err(e) => return Err(classify(e, &what)),
    };
    let answer: Value = serde_json::from_slice(&answer).map_err(|e| {
        csal_core::StorageError::transient(format!("{what}: Dropbox answered with malformed JSON")).with_source(e)
    })?;
    let id_prefix = request.id_prefix();
    let objects = answer
        .get("entries")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| meta_from(client, e))
                .filter(|m| m.object_id.starts_with(&id_prefix) && request.matches_time(m))
                .collect()
        })
        .unwrap_or_default();
    let has_more = answer.get("has_more").and_then(Value::as_bool).unwrap_or(false);
    let next_page = if has_more { answer.get("cursor").and_then(Value::as_str).map(str::to_owned) } else { None };
    Ok(ListPage { objects, next_page })
}

fn is_missing_folder(e: &ApiError) -> bool {
    e.status == 409 && (e.is("path/not_found") || e.is("path/not_folder"))
}
