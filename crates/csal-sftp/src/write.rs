//! Streaming writes: the body goes to `.csal-tmp/<ulid>.part` under the
//! base folder (opened with CREATE|EXCLUDE), then a plain SFTP rename moves
//! it to the object's name (creating the object's folder when the rename
//! says it is missing). OpenSSH implements SSH_FXP_RENAME with
//! link()+unlink(), so the rename fails instead of replacing an existing
//! file; we then check that the target exists and pick a fresh id. A failed
//! body or connection removes the temp file (best effort); what a dead
//! connection or process leaves in `.csal-tmp` is never listed and is swept
//! by health checks once it is a day old ([`sweep_stale_temp`]).

use std::sync::Arc;

use csal_core::{
    ByteStream, ErrorKind, Result, StorageError, WriteMeta, WriteReceipt, is_stale_temp, object_id_from_hint,
};
use futures::StreamExt;
use russh_sftp::protocol::OpenFlags;
use tokio::io::AsyncWriteExt;

use crate::client::{Session, SftpClient};
use crate::error::{is_generic_failure, map_sftp};
use crate::paths::{TEMP_DIR, full_path, parent_of};

/// Attempts at finding a free object id when a rename hits an existing name.
const RENAME_ATTEMPTS: usize = 5;

pub(crate) async fn write(client: &SftpClient, mut body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
    let base = client.config().base();
    let mut object_id = object_id_from_hint(&meta.key_hint);
    let tmp_dir = full_path(&base, TEMP_DIR);
    let tmp = format!("{tmp_dir}/{}.part", ulid::Ulid::new());
    let session = client.session().await?;
    let limit = client.config().operation_timeout();

    let file = match open_exclusive(&session, &tmp, limit).await {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            mkdir_p(client, &tmp_dir).await?;
            open_exclusive(&session, &tmp, limit).await
        }
        other => other,
    };
    let mut file = match file {
        Ok(f) => f,
        Err(e) => {
            discard_if_broken(client, &session, &e).await;
            return Err(e);
        }
    };

    let mut size = 0u64;
    let streamed: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            file.write_all(&chunk).await.map_err(|e| io_error(e, "writing"))?;
            size += chunk.len() as u64;
        }
        match tokio::time::timeout(limit, file.shutdown()).await {
            Ok(r) => r.map_err(|e| io_error(e, "closing the temp file")),
            Err(_) => Err(StorageError::timeout("closing the temp file: no reply in time")),
        }
    }
    .await;
    if let Err(e) = streamed {
        drop(file);
        let e = classify_full_disk(&session, &tmp_dir, e, limit).await;
        remove_quietly(client, &session, &tmp).await;
        discard_if_broken(client, &session, &e).await;
        return Err(e);
    }
    drop(file);

    let mut made_folder = false;
    for _ in 0..RENAME_ATTEMPTS {
        let target = full_path(&base, &object_id);
        let renamed = with_limit(limit, session.sftp.rename(tmp.clone(), target.clone()), "renaming into place").await;
        match renamed {
            Ok(()) => {
                return Ok(WriteReceipt { object_id, size, checksum: None, etag: None, instance: None });
            }
            // The object's folder does not exist yet.
            Err(e) if e.kind() == ErrorKind::NotFound && !made_folder => {
                if let Err(e) = mkdir_p(client, &parent_of(&target)).await {
                    remove_quietly(client, &session, &tmp).await;
                    return Err(e);
                }
                made_folder = true;
            }
            Err(e) if is_generic_failure(&e) && exists(&session, &target, limit).await => {
                tracing::warn!(object_id, "sftp rename target exists; picking a new id");
                object_id = object_id_from_hint(&meta.key_hint);
            }
            Err(e) if e.is_transient() => {
                // The reply was lost: the rename may have happened. Look on a fresh
                // session, so a retry cannot leave a second copy behind.
                discard_if_broken(client, &session, &e).await;
                if settle_lost_rename(client, &tmp, &target, size).await {
                    return Ok(WriteReceipt { object_id, size, checksum: None, etag: None, instance: None });
                }
                return Err(e);
            }
            Err(e) => {
                remove_quietly(client, &session, &tmp).await;
                discard_if_broken(client, &session, &e).await;
                return Err(e);
            }
        }
    }
    remove_quietly(client, &session, &tmp).await;
    Err(StorageError::already_exists("every candidate object id already existed"))
}

/// `true` if `target` holds `size` bytes and `tmp` is gone (the lost rename
/// happened); otherwise the temp file is removed (best effort).
async fn settle_lost_rename(client: &SftpClient, tmp: &str, target: &str, size: u64) -> bool {
    let (t, g) = (tmp.to_owned(), target.to_owned());
    let tmp_left = client.run("stat", |s| async move { s.sftp.metadata(t).await }).await;
    let target_now = client.run("stat", |s| async move { s.sftp.metadata(g).await }).await;
    let tmp_gone = matches!(&tmp_left, Err(e) if e.kind() == ErrorKind::NotFound);
    if tmp_gone && matches!(&target_now, Ok(a) if a.len() == size) {
        return true;
    }
    if let Ok(session) = client.session().await {
        remove_quietly(client, &session, tmp).await;
    }
    false
}

/// Remove temp files untouched for a day (uploads of connections or
/// processes that died); returns how many went.
pub(crate) async fn sweep_stale_temp(client: &SftpClient) -> Result<usize> {
    let dir = full_path(&client.config().base(), TEMP_DIR);
    let listed = dir.clone();
    let entries = match client.run("listing temp files", |s| async move { s.sftp.read_dir(listed).await }).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let attrs = entry.metadata();
        if !attrs.file_type().is_file() || !is_stale_temp(attrs.modified().ok()) {
            continue;
        }
        let path = format!("{dir}/{}", entry.file_name());
        match client.run("removing an old temp file", |s| async move { s.sftp.remove_file(path).await }).await {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if removed > 0 {
        tracing::info!(removed, host = %client.config().host, "sftp: removed temp files left by uploads that died");
    }
    Ok(removed)
}

async fn open_exclusive(
    session: &Arc<Session>,
    path: &str,
    limit: std::time::Duration,
) -> Result<russh_sftp::client::fs::File> {
    let flags = OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE;
    with_limit(limit, session.sftp.open_with_flags(path.to_owned(), flags), "creating the temp file").await
}

async fn with_limit<T>(
    limit: std::time::Duration,
    fut: impl std::future::Future<Output = std::result::Result<T, russh_sftp::client::error::Error>>,
    what: &str,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(|e| map_sftp(e, what)),
        Err(_) => Err(StorageError::timeout(format!("{what}: no reply within {} s", limit.as_secs()))),
    }
}

async fn exists(session: &Arc<Session>, path: &str, limit: std::time::Duration) -> bool {
    with_limit(limit, session.sftp.metadata(path.to_owned()), "stat").await.is_ok()
}

/// An I/O error of the SFTP file (russh-sftp reports lost connections as `Other`).
fn io_error(e: std::io::Error, what: &str) -> StorageError {
    let kind = match e.kind() {
        std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ if e.to_string().contains("Failure") => ErrorKind::Permanent,
        _ if e.to_string().contains("Permission denied") => ErrorKind::Auth,
        _ => ErrorKind::Transient,
    };
    let detail = if kind == ErrorKind::Permanent { "server reported a failure" } else { "connection error" };
    StorageError::new(kind, format!("{what}: {detail}")).with_source(e)
}

/// OpenSSH reports ENOSPC/EDQUOT as a bare SSH_FX_FAILURE: ask statvfs.
async fn classify_full_disk(
    session: &Arc<Session>,
    dir: &str,
    err: StorageError,
    limit: std::time::Duration,
) -> StorageError {
    if err.kind() != ErrorKind::Permanent {
        return err;
    }
    match tokio::time::timeout(limit, session.sftp.fs_info(dir.to_owned())).await {
        Ok(Ok(Some(vfs))) if vfs.blocks_avail == 0 => {
            StorageError::new(ErrorKind::QuotaExceeded, "the server's disk is full").with_source(err)
        }
        _ => err,
    }
}

async fn remove_quietly(client: &SftpClient, session: &Arc<Session>, path: &str) {
    if session.is_closed() {
        return;
    }
    let limit = client.config().operation_timeout();
    let removed = with_limit(limit, session.sftp.remove_file(path.to_owned()), "removing the temp file").await;
    if let Err(e) = removed
        && e.kind() != ErrorKind::NotFound
    {
        tracing::warn!(path, error = %e, "sftp: could not remove a temp file");
    }
}

/// After a connection-level failure, make the next call reconnect.
async fn discard_if_broken(client: &SftpClient, session: &Arc<Session>, err: &StorageError) {
    if err.is_transient() || session.is_closed() {
        client.discard(session).await;
    }
}

/// Create `dir` and its missing parents (races with other writers are fine).
pub(crate) async fn mkdir_p(client: &SftpClient, dir: &str) -> Result<()> {
    let mut prefix = String::new();
    let mut parts: Vec<&str> = Vec::new();
    if let Some(rest) = dir.strip_prefix('/') {
        prefix.push('/');
        parts.extend(rest.split('/').filter(|p| !p.is_empty()));
    } else {
        parts.extend(dir.split('/').filter(|p| !p.is_empty() && *p != "."));
    }
    for part in parts {
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        prefix.push_str(part);
        let path = prefix.clone();
        let made = client.run("creating a folder", |s| async move { s.sftp.create_dir(path).await }).await;
        if let Err(e) = made {
            let path = prefix.clone();
            let is_dir = client.run("stat", |s| async move { s.sftp.metadata(path).await }).await;
            match is_dir {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(_) => return Err(StorageError::permanent(format!("'{prefix}' exists and is not a folder"))),
                Err(_) => return Err(e),
            }
        }
    }
    Ok(())
}
