//! Listing: a walk of the folder tree with `files.list`
//! (`q = "'FOLDER' in parents and trashed = false"`, `pageSize`,
//! `pageToken`). The continuation token holds the page token of the folder
//! being read and the folders still to visit; each call reads one page.

use csal_core::{ListPage, ListRequest, Result};
use csal_http::{FolderWalk, join_path, may_contain};
use serde_json::Value;

use crate::client::{DriveClient, FILE_FIELDS, FOLDER_MIME, escape};
use crate::error::classify;
use crate::read::meta_from;

/// A folder of the walk: its path relative to the root, and its Drive id.
type Folder = (String, String);

pub(crate) async fn list(client: &DriveClient, request: &ListRequest) -> Result<ListPage> {
    let what = format!("list '{}'", request.path);
    let page_size = request.limit.unwrap_or(1000).clamp(1, 1000);
    let mut walk = match &request.continuation {
        Some(token) => FolderWalk::<Folder>::resume(token)?,
        None => {
            let start = request.path.trim_matches('/').to_owned();
            let Some(id) = client.folder_id(&start, false).await? else { return Ok(ListPage::default()) };
            FolderWalk::start((start, id))
        }
    };
    let Some((folder, page_token)) = walk.next_folder() else { return Ok(ListPage::default()) };
    let url = client.files_url();
    let mut query = client.list_common();
    query.push(("q", format!("'{}' in parents and trashed = false", escape(&folder.1))));
    query.push(("pageSize", page_size.to_string()));
    query.push(("fields", format!("nextPageToken,files({FILE_FIELDS})")));
    if let Some(t) = &page_token {
        query.push(("pageToken", t.clone()));
    }
    let answer = match client.api.send(&what, |http| http.get(&url).query(&query)).await? {
        Ok(resp) => csal_http::read_json(resp, &what).await?,
        Err(e) if e.status.as_u16() == 404 => Value::Null,
        Err(e) => return Err(classify(e, &what)),
    };
    let id_prefix = request.id_prefix();
    let mut objects = Vec::new();
    for file in answer["files"].as_array().into_iter().flatten() {
        let (Some(name), Some(id)) = (file["name"].as_str(), file["id"].as_str()) else { continue };
        let rel = join_path(&folder.0, name);
        if file["mimeType"].as_str() == Some(FOLDER_MIME) {
            if may_contain(&rel, &id_prefix) {
                walk.visit((rel, id.to_owned()));
            }
        } else {
            let meta = meta_from(rel, file);
            if meta.object_id.starts_with(&id_prefix) && request.matches_time(&meta) {
                objects.push(meta);
            }
        }
    }
    let next = answer["nextPageToken"].as_str().map(str::to_owned);
    Ok(ListPage { objects, next_page: walk.after_page(folder, next) })
}
