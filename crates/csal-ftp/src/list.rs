//! Listing: a recursive walk (CWD + MLSD, or LIST parsed as Unix `ls -l` /
//! DOS lines for servers without MLSD, such as vsftpd), pruned to folders
//! that can hold the prefix, sorted by id. Pagination is done here: the
//! continuation token is the last id of the previous page. LIST times have
//! minute precision (year-only for files older than six months).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use csal_core::{ErrorKind, ListPage, ListRequest, ObjectMeta, Result};
use suppaftp::list::{File, ListParser};

use crate::client::{FtpPool, timed};
use crate::paths::{TEMP_PREFIX, full_path};

const DEFAULT_PAGE: usize = 1000;

pub(crate) async fn list(pool: &Arc<FtpPool>, request: &ListRequest) -> Result<ListPage> {
    let root = pool.root().await?;
    let prefix = request.id_prefix();
    let start = match prefix.rfind('/') {
        Some(i) => prefix[..i].to_owned(),
        None => String::new(),
    };
    let limit = request.limit.unwrap_or(DEFAULT_PAGE).max(1);
    let mut conn = pool.checkout().await?;
    let op_limit = conn.limit();
    let mut found: Vec<ObjectMeta> = Vec::new();
    let mut stack = vec![start];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() { root.clone() } else { full_path(&root, &rel) };
        let cwd = timed(op_limit, "CWD", conn.ftp().cwd(dir.as_str())).await;
        match conn.check(cwd) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
        let entries = read_dir(pool, &mut conn).await?;
        for entry in entries {
            let name = entry.name().to_owned();
            if name == "." || name == ".." || name.starts_with(TEMP_PREFIX) || name.contains('/') {
                continue;
            }
            let id = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if entry.is_directory() {
                let as_dir = format!("{id}/");
                if as_dir.starts_with(&prefix) || prefix.starts_with(&as_dir) {
                    stack.push(id);
                }
                continue;
            }
            if !entry.is_file() || !id.starts_with(&prefix) {
                continue;
            }
            if request.continuation.as_ref().is_some_and(|after| id.as_str() <= after.as_str()) {
                continue;
            }
            let meta = ObjectMeta { modified: Some(entry.modified()), ..ObjectMeta::new(id, entry.size() as u64) };
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

/// Entries of the current folder: MLSD when the server has it, else LIST.
async fn read_dir(pool: &Arc<FtpPool>, conn: &mut crate::client::Conn) -> Result<Vec<File>> {
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
