//! Listing: [`csal_core::list_tree`] over SFTP folders (one `read_dir` per
//! folder on the page's way; the entries' attributes carry size and times,
//! so no extra `stat`). A page costs O(page), not O(tree), and keeps at most
//! a page of entries; the continuation token is the last id of the previous
//! page. Our own temp files and folders (`.csal*`) are never listed.

use csal_core::{ErrorKind, FolderSelection, FolderTree, ListPage, ListRequest, Result};

use crate::client::SftpClient;
use crate::paths::{RESERVED_PREFIX, full_path, meta_from_attrs};

const DEFAULT_PAGE: usize = 1000;

pub(crate) async fn list(client: &SftpClient, request: &ListRequest) -> Result<ListPage> {
    let mut tree = SftpTree { client, base: client.config().base() };
    csal_core::list_tree(&mut tree, request, DEFAULT_PAGE, None).await
}

struct SftpTree<'a> {
    client: &'a SftpClient,
    base: String,
}

#[csal_core::async_trait]
impl FolderTree for SftpTree<'_> {
    async fn read_folder(&mut self, folder: &str, into: &mut FolderSelection) -> Result<bool> {
        let dir = if folder.is_empty() { self.base.clone() } else { full_path(&self.base, folder) };
        let entries = match self.client.run("listing a folder", |s| async move { s.sftp.read_dir(dir).await }).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry.file_name();
            if name.starts_with(RESERVED_PREFIX) {
                continue;
            }
            // Attributes as lstat gives them: symlinks are neither, and skipped.
            let attrs = entry.metadata();
            if attrs.file_type().is_dir() {
                into.offer_folder(&name);
            } else if attrs.file_type().is_file() {
                into.offer_file(&name, Some(meta_from_attrs(String::new(), &attrs)));
            }
        }
        Ok(true)
    }
}
