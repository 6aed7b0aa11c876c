//! Listing: a walk of the folder tree with `GET /folders/{id}/items`
//! (`usemarker=true`, `limit`, `marker`: marker-based paging, which Box
//! recommends over offsets for large folders). The continuation token holds
//! the marker of the folder being read and the folders still to visit;
//! each call reads one page. Folders that cannot hold ids with the wanted
//! prefix are not visited.

use csal_core::{ListPage, ListRequest, Result};
use csal_http::{FolderWalk, join_path, may_contain};
use serde_json::Value;

use crate::client::{BoxClient, FILE_FIELDS};
use crate::error::classify;
use crate::read::meta_from;

/// Box's largest page of folder items.
const MAX_LIMIT: usize = 1000;

/// A folder of the walk: its path relative to the root, and its Box id.
type Folder = (String, String);

pub(crate) async fn list(client: &BoxClient, request: &ListRequest) -> Result<ListPage> {
    let what = format!("list '{}'", request.path);
    let limit = request.limit.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT);
    let mut walk = match &request.continuation {
        Some(token) => FolderWalk::<Folder>::resume(token)?,
        None => {
            let start = request.path.trim_matches('/').to_owned();
            let Some(id) = client.folder_id(&start, false).await? else { return Ok(ListPage::default()) };
            FolderWalk::start((start, id))
        }
    };
    let Some((folder, marker)) = walk.next_folder() else { return Ok(ListPage::default()) };
    let url = client.url(&format!("/folders/{}/items", folder.1));
    let mut query =
        vec![("usemarker", "true".to_owned()), ("limit", limit.to_string()), ("fields", FILE_FIELDS.to_owned())];
    if let Some(m) = &marker {
        query.push(("marker", m.clone()));
    }
    let answer = match client.api.send(&what, |http| http.get(&url).query(&query)).await? {
        Ok(resp) => csal_http::read_json(resp, &what).await?,
        // A folder deleted meanwhile: nothing there.
        Err(e) if e.status.as_u16() == 404 => Value::Null,
        Err(e) => return Err(classify(e, &what)),
    };
    let id_prefix = request.id_prefix();
    let mut objects = Vec::new();
    for item in answer["entries"].as_array().into_iter().flatten() {
        let (Some(name), Some(id)) = (item["name"].as_str(), item["id"].as_str()) else { continue };
        let rel = join_path(&folder.0, name);
        match item["type"].as_str() {
            Some("folder") if may_contain(&rel, &id_prefix) => walk.visit((rel, id.to_owned())),
            Some("file") => {
                let meta = meta_from(rel, item);
                if meta.object_id.starts_with(&id_prefix) && request.matches_time(&meta) {
                    objects.push(meta);
                }
            }
            // Folders outside the prefix, and web links (not objects).
            _ => {}
        }
    }
    let next = answer["next_marker"].as_str().map(str::to_owned);
    Ok(ListPage { objects, next_page: walk.after_page(folder, next) })
}
