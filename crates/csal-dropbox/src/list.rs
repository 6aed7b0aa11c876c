//! Listing: `files::list_folder` (recursive) and `list_folder_continue`.
//! The continuation token is Dropbox's cursor; prefix and time filters are
//! applied here (Dropbox lists folders, not key prefixes), so a page can
//! hold fewer objects than the limit, or none, and still have a next page.

use csal_core::{ListPage, ListRequest, Result};
use dropbox_sdk::files::{
    self, ListFolderArg, ListFolderContinueArg, ListFolderError, ListFolderResult, LookupError, Metadata,
};

use crate::client::DropboxClient;
use crate::read::meta_from;

/// Dropbox accepts a `limit` of 1..=2000.
const MAX_LIMIT: usize = 2000;

pub(crate) async fn list(client: &DropboxClient, request: &ListRequest) -> Result<ListPage> {
    let what = format!("list '{}'", request.path);
    let call = client.call(&what).await?;
    let answer: ListFolderResult = match &request.continuation {
        Some(cursor) => files::list_folder_continue(&call, &ListFolderContinueArg::new(cursor.clone()))
            .await
            .map_err(|e| call.fail(e))?,
        None => {
            let limit = request.limit.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT);
            let arg = ListFolderArg::new(client.folder_of(&request.path))
                .with_recursive(true)
                .with_limit(limit as u32)
                .with_include_deleted(false);
            match files::list_folder(&call, &arg).await {
                Ok(answer) => answer,
                // A folder that does not exist (yet) holds no objects.
                Err(dropbox_sdk::Error::Api(ListFolderError::Path(LookupError::NotFound | LookupError::NotFolder))) => {
                    return Ok(ListPage::default());
                }
                Err(e) => return Err(call.fail(e)),
            }
        }
    };
    let id_prefix = request.id_prefix();
    let objects = answer
        .entries
        .iter()
        .filter_map(|e| match e {
            Metadata::File(f) => meta_from(client, f),
            _ => None,
        })
        .filter(|m| m.object_id.starts_with(&id_prefix) && request.matches_time(m))
        .collect();
    let next_page = answer.has_more.then_some(answer.cursor);
    Ok(ListPage { objects, next_page })
}
