//! Listing: one recursive `listfolder` (https://docs.pcloud.com/methods/folder/listfolder.html),
//! flattened and sorted by id on the client; the continuation token is the
//! last id of the previous page. pCloud has no server-side pagination.

use serde_json::Value;

use csal_core::{ErrorKind, ListPage, ListRequest, ObjectMeta, Result};

use crate::client::{Body, PcloudClient, object_meta};

const DEFAULT_LIMIT: usize = 1000;

pub(crate) async fn list(client: &PcloudClient, request: &ListRequest) -> Result<ListPage> {
    let base = request.path.trim_matches('/');
    let folder = if base.is_empty() { client.root.clone() } else { client.path_of(base) };
    let params = [("path", folder), ("recursive", "1".to_owned())];
    let tree = match client.call("listfolder", &params, Body::None).await {
        Ok(v) => v,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(ListPage::default()),
        Err(e) => return Err(e),
    };
    let mut all = Vec::new();
    if let Some(root) = tree.get("metadata") {
        flatten(root, base, &mut all);
    }
    all.sort_by(|a, b| a.object_id.cmp(&b.object_id));
    let prefix = request.id_prefix();
    let limit = request.limit.unwrap_or(DEFAULT_LIMIT).max(1);
    let mut page = ListPage::default();
    for meta in all {
        if !meta.object_id.starts_with(&prefix) {
            continue;
        }
        if request.continuation.as_ref().is_some_and(|after| meta.object_id.as_str() <= after.as_str()) {
            continue;
        }
        if !request.matches_time(&meta) {
            continue;
        }
        if page.objects.len() == limit {
            page.next_page = page.objects.last().map(|m| m.object_id.clone());
            break;
        }
        page.objects.push(meta);
    }
    Ok(page)
}

fn flatten(folder: &Value, dir: &str, out: &mut Vec<ObjectMeta>) {
    let Some(contents) = folder.get("contents").and_then(Value::as_array) else { return };
    for item in contents {
        let Some(name) = item.get("name").and_then(Value::as_str) else { continue };
        let id = if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") };
        if item.get("isfolder").and_then(Value::as_bool).unwrap_or(false) {
            flatten(item, &id, out);
        } else {
            out.push(object_meta(id, item));
        }
    }
}
