//! Listing: [`csal_core::list_tree`] over non-recursive `listfolder` calls
//! (https://docs.pcloud.com/methods/folder/listfolder.html), one per folder
//! on the page's way, in id order; the continuation token is the last id of
//! the previous page and a page resumes after it without visiting earlier
//! folders. pCloud has no server-side pagination, so a folder is fetched
//! whole each time a page passes through it; a page keeps at most a page of
//! entries.

use serde_json::Value;

use csal_core::{ErrorKind, FolderSelection, FolderTree, ListPage, ListRequest, Result};

use crate::client::{Body, PcloudClient, object_meta};

const DEFAULT_LIMIT: usize = 1000;

pub(crate) async fn list(client: &PcloudClient, request: &ListRequest) -> Result<ListPage> {
    csal_core::list_tree(&mut PcloudTree { client }, request, DEFAULT_LIMIT, None).await
}

struct PcloudTree<'a> {
    client: &'a PcloudClient,
}

#[csal_core::async_trait]
impl FolderTree for PcloudTree<'_> {
    async fn read_folder(&mut self, folder: &str, into: &mut FolderSelection) -> Result<bool> {
        let path = if folder.is_empty() { self.client.root.clone() } else { self.client.path_of(folder) };
        let answer = match self.client.call("listfolder", &[("path", path)], Body::None).await {
            Ok(v) => v,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let contents = answer.get("metadata").and_then(|m| m.get("contents")).and_then(Value::as_array);
        for item in contents.into_iter().flatten() {
            let Some(name) = item.get("name").and_then(Value::as_str) else { continue };
            if item.get("isfolder").and_then(Value::as_bool).unwrap_or(false) {
                into.offer_folder(name);
            } else {
                into.offer_file(name, Some(object_meta(String::new(), item)));
            }
        }
        Ok(true)
    }
}
