//! Listing: walk the folder, sort ids, resume after the continuation token.
//!
//! The token is the last object id of the previous page, so pages stay
//! correct when objects are added or removed between calls. Each page walks
//! the folder again (fine for the folder sizes of a recording archive; a
//! per-day folder layout keeps walks short).

use std::path::Path;
use std::time::SystemTime;

use csal_core::{ListPage, ListRequest, ObjectMeta, Result, StorageError};

use crate::paths::{TMP_DIR, id_of};

const DEFAULT_PAGE: usize = 1000;

pub(crate) async fn list(root: &Path, request: &ListRequest) -> Result<ListPage> {
    let root = root.to_path_buf();
    let request = request.clone();
    tokio::task::spawn_blocking(move || list_blocking(&root, &request))
        .await
        .map_err(|e| StorageError::transient("listing task failed").with_source(e))?
}

fn list_blocking(root: &Path, request: &ListRequest) -> Result<ListPage> {
    let folder = request.path.trim_matches('/');
    if !folder.is_empty() {
        csal_core::check_object_id(folder)?;
    }
    let start = root.join(folder);
    if !start.is_dir() {
        return Ok(ListPage::default());
    }
    let id_prefix = request.id_prefix();
    let limit = request.limit.unwrap_or(DEFAULT_PAGE);
    let mut found: Vec<(String, u64, Option<SystemTime>)> = Vec::new();
    let walker = walkdir::WalkDir::new(&start).follow_links(false).into_iter().filter_entry(|e| {
        e.depth() == 0 || !(e.file_type().is_dir() && e.file_name().to_str().is_some_and(|n| n == TMP_DIR))
    });
    for entry in walker {
        let entry =
            entry.map_err(|e| StorageError::transient("could not read a folder while listing").with_source(e))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(id) = id_of(root, entry.path()) else { continue };
        if !id.starts_with(&id_prefix)
            || request.continuation.as_ref().is_some_and(|after| id.as_str() <= after.as_str())
        {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(_) => continue, // deleted while we walked
        };
        found.push((id, meta.len(), meta.modified().ok()));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut page = ListPage::default();
    for (id, size, modified) in found {
        if page.objects.len() == limit {
            page.next_page = page.objects.last().map(|o| o.object_id.clone());
            break;
        }
        let meta = ObjectMeta { modified, ..ObjectMeta::new(id, size) };
        if request.matches_time(&meta) {
            page.objects.push(meta);
        }
    }
    Ok(page)
}
