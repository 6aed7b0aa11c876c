//! Listing: the decrypted node tree (`f`), walked from the root folder,
//! flattened and sorted by id; the continuation token is the last id. The
//! first page refetches the tree (so objects written by other clients show
//! up); later pages walk the cached tree.

use std::time::{Duration, UNIX_EPOCH};

use csal_core::{ListPage, ListRequest, ObjectMeta, Result};

use crate::client::{MegaClient, Node, Tree};

pub(crate) fn object_meta(id: String, n: &Node) -> ObjectMeta {
    let mut m = ObjectMeta::new(id, n.size);
    m.modified = (n.ts > 0).then(|| UNIX_EPOCH + Duration::from_secs(n.ts));
    m
}

pub(crate) async fn list(client: &MegaClient, request: &ListRequest) -> Result<ListPage> {
    let base = request.path.trim_matches('/');
    let mut path: Vec<String> = client.root.clone();
    path.extend(base.split('/').filter(|s| !s.is_empty()).map(str::to_owned));
    let fresh = request.continuation.is_none();
    let mut all = client
        .with_tree(fresh, |tree| {
            let mut all = Vec::new();
            for start in tree.folders(&path) {
                walk(tree, &start, base, &mut all);
            }
            all
        })
        .await?;
    all.sort_by(|a, b| a.object_id.cmp(&b.object_id));
    all.dedup_by(|a, b| a.object_id == b.object_id);
    let prefix = request.id_prefix();
    let limit = request.limit.unwrap_or(1000).max(1);
    let mut page = ListPage::default();
    for meta in all {
        if !meta.object_id.starts_with(&prefix)
            || request.continuation.as_ref().is_some_and(|after| meta.object_id.as_str() <= after.as_str())
            || !request.matches_time(&meta)
        {
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

fn walk(tree: &Tree, folder: &str, dir: &str, out: &mut Vec<ObjectMeta>) {
    for n in tree.children(folder) {
        let id = if dir.is_empty() { n.name.clone() } else { format!("{dir}/{}", n.name) };
        match n.kind {
            1 => walk(tree, &n.handle, &id, out),
            0 => out.push(object_meta(id, n)),
            _ => {}
        }
    }
}
