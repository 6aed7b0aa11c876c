//! Listing: [`csal_core::list_tree`] over FTP folders (CWD + MLSD, or LIST
//! parsed as Unix `ls -l` / DOS lines for servers without MLSD, such as
//! vsftpd), one folder read per folder on the page's way, on one pooled
//! connection. A page costs O(page), not O(tree); the continuation token is
//! the last id of the previous page. LIST times have minute precision
//! (year-only for files older than six months).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use csal_core::{ErrorKind, FolderSelection, FolderTree, ListPage, ListRequest, ObjectMeta, Result};
use suppaftp::list::{File, ListParser};

use crate::client::{Conn, FtpPool, timed};
use crate::paths::{RESERVED_PREFIX, full_path};

const DEFAULT_PAGE: usize = 1000;

pub(crate) async fn list(pool: &Arc<FtpPool>, request: &ListRequest) -> Result<ListPage> {
    let root = pool.root().await?;
    let conn = pool.checkout().await?;
    let mut tree = FtpTree { pool, conn, root };
    csal_core::list_tree(&mut tree, request, DEFAULT_PAGE, None).await
}

struct FtpTree<'a> {
    pool: &'a Arc<FtpPool>,
    conn: Conn,
    root: String,
}

#[csal_core::async_trait]
impl FolderTree for FtpTree<'_> {
    async fn read_folder(&mut self, folder: &str, into: &mut FolderSelection) -> Result<bool> {
        let dir = if folder.is_empty() { self.root.clone() } else { full_path(&self.root, folder) };
        let Some(entries) = read_folder(self.pool, &mut self.conn, &dir).await? else { return Ok(false) };
        for entry in entries {
            let name = entry.name();
            if name.starts_with(RESERVED_PREFIX) {
                continue;
            }
            if entry.is_directory() {
                into.offer_folder(name);
            } else if entry.is_file() {
                let meta = ObjectMeta { modified: Some(entry.modified()), ..ObjectMeta::new("", entry.size() as u64) };
                into.offer_file(name, Some(meta));
            }
        }
        Ok(true)
    }
}

/// The entries of the absolute folder `dir`; `None` when it does not exist.
pub(crate) async fn read_folder(pool: &Arc<FtpPool>, conn: &mut Conn, dir: &str) -> Result<Option<Vec<File>>> {
    let cwd = timed(conn.limit(), "CWD", conn.ftp().cwd(dir)).await;
    match conn.check(cwd) {
        Ok(()) => read_dir(pool, conn).await.map(Some),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Entries of the current folder: MLSD when the server has it, else LIST.
async fn read_dir(pool: &Arc<FtpPool>, conn: &mut Conn) -> Result<Vec<File>> {
    let limit = conn.limit();
    if pool.mlsd.load(Ordering::Relaxed) {
        let lines = timed(limit, "MLSD", conn.ftp().mlsd(None)).await;
        match conn.check(lines) {
            Ok(lines) => return Ok(lines.iter().filter_map(|l| ListParser::parse_mlsd(l).ok()).collect()),
            Err(e) if e.kind() == ErrorKind::Unsupported => pool.mlsd.store(false, Ordering::Relaxed),
            Err(e) => return Err(e),
        }
    }
    let lines = timed(limit, "LIST", conn.ftp().list(None)).await;
    let lines = conn.check(lines)?;
    Ok(lines.iter().filter_map(|l| File::try_from(l.as_str()).ok()).collect())
}
