//! Listing: a recursive walk of the folder that holds the requested id
//! prefix, pruned to sub-folders that can hold matches, sorted by id.
//! Pagination is done here: the continuation token is the last id of the
//! previous page (ids are unique and sorted, so no object is skipped or
//! repeated while nothing is written meanwhile).

use csal_core::{ErrorKind, ListPage, ListRequest, ObjectMeta, Result};

use crate::client::SftpClient;
use crate::paths::{TEMP_PREFIX, full_path, meta_from_attrs};

const DEFAULT_PAGE: usize = 1000;

pub(crate) async fn list(client: &SftpClient, request: &ListRequest) -> Result<ListPage> {
    let base = client.config().base();
    let prefix = request.id_prefix();
    let root = match prefix.rfind('/') {
        Some(i) => prefix[..i].to_owned(),
        None => String::new(),
    };
    let limit = request.limit.unwrap_or(DEFAULT_PAGE).max(1);
    let mut found: Vec<ObjectMeta> = Vec::new();
    let mut stack = vec![root];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() { base.clone() } else { full_path(&base, &rel) };
        let entries = match client.run("listing a folder", |s| async move { s.sftp.read_dir(dir).await }).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry.file_name();
            if name == "." || name == ".." || name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let id = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let attrs = entry.metadata();
            if attrs.file_type().is_dir() {
                let as_dir = format!("{id}/");
                if as_dir.starts_with(&prefix) || prefix.starts_with(&as_dir) {
                    stack.push(id);
                }
                continue;
            }
            if !attrs.file_type().is_file() || !id.starts_with(&prefix) {
                continue;
            }
            if request.continuation.as_ref().is_some_and(|after| id.as_str() <= after.as_str()) {
                continue;
            }
            let meta = meta_from_attrs(id, &attrs);
            if request.matches_time(&meta) {
                found.push(meta);
            }
        }
    }
    found.sort_by(|a, b| a.object_id.cmp(&b.object_id));
    let more = found.len() > limit;
    found.truncate(limit);
    let next_page = if more { found.last().map(|m| m.object_id.clone()) } else { None };
    Ok(ListPage { objects: found, next_page })
}
