//! Listing. Graph lists one folder's children at a time (`$top`,
//! `@odata.nextLink`), so a recursive listing is a walk: the continuation
//! token holds the next link of the folder being read plus the folders still
//! to visit. Each call reads one Graph page. Folders that cannot hold ids
//! with the wanted prefix are not visited.

use csal_core::{ListPage, ListRequest, Result};
use csal_http::{FolderWalk, join_path, may_contain};
use serde_json::{Value, json};

use crate::client::GraphClient;
use crate::error::classify;
use crate::read::meta_from;

const MAX_TOP: usize = 1000;

pub(crate) async fn list(client: &GraphClient, request: &ListRequest) -> Result<ListPage> {
    let what = format!("list '{}'", request.path);
    let top = request.limit.unwrap_or(200).clamp(1, MAX_TOP);
    let mut walk = match &request.continuation {
        Some(token) => FolderWalk::<String>::resume(token)?,
        None => FolderWalk::start(request.path.trim_matches('/').to_owned()),
    };
    let Some((folder, next_link)) = walk.next_folder() else { return Ok(ListPage::default()) };
    let url = next_link.unwrap_or_else(|| format!("{}?$top={top}", client.action_url(&folder, "children")));
    let answer = match client.api.send(&what, |http| http.get(&url)).await? {
        Ok(resp) => csal_http::read_json(resp, &what).await?,
        // The start folder (not yet created) or a folder deleted meanwhile: nothing there.
        Err(e) if e.status.as_u16() == 404 => json!({ "value": [] }),
        Err(e) => return Err(classify(e, &what)),
    };
    let id_prefix = request.id_prefix();
    let mut objects = Vec::new();
    for item in answer.get("value").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = item.get("name").and_then(Value::as_str) else { continue };
        let rel = join_path(&folder, name);
        if item.get("folder").is_some() {
            if may_contain(&rel, &id_prefix) {
                walk.visit(rel);
            }
        } else if let Some(meta) = meta_from(rel, item)
            && meta.object_id.starts_with(&id_prefix)
            && request.matches_time(&meta)
        {
            objects.push(meta);
        }
    }
    let next = answer.get("@odata.nextLink").and_then(Value::as_str).map(str::to_owned);
    Ok(ListPage { objects, next_page: walk.after_page(folder, next) })
}
