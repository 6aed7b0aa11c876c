//! Streaming uploads: STOR to `.csal-tmp/<ulid>.part` under the base
//! folder, then RNFR/RNTO to the object's name only after SIZE showed that
//! name is free (ids carry a ULID, so a name can only be taken by a
//! leftover, never by a concurrent writer; FTP has no atomic no-clobber
//! rename). A refused rename creates the object's folder and tries once
//! more. A failed body or reply deletes the temp file; what a dead
//! connection or process leaves in `.csal-tmp` is never listed and is swept
//! by health checks once it is a day old ([`sweep_stale_temp`]).

use std::sync::Arc;
use std::time::SystemTime;

use csal_core::{
    ByteStream, ErrorKind, Result, StorageError, WriteMeta, WriteReceipt, is_stale_temp, object_id_from_hint,
};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::client::{Conn, FtpPool, timed};
use crate::error::{code, io_error};
use crate::paths::{TEMP_DIR, full_path, parent_of};

const NAME_ATTEMPTS: usize = 5;

pub(crate) async fn write(pool: &Arc<FtpPool>, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
    write_inner(pool, body, meta).await
}

async fn write_inner(pool: &Arc<FtpPool>, mut body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
    let root = pool.root().await?;
    let mut object_id = object_id_from_hint(&meta.key_hint);
    let tmp_dir = full_path(&root, TEMP_DIR);
    let tmp = format!("{tmp_dir}/{}.part", ulid::Ulid::new());
    let mut conn = pool.checkout().await?;
    let limit = conn.limit();

    let opened = match timed(limit, "STOR", conn.ftp().put_with_stream(tmp.as_str())).await {
        Err(e) if matches!(code(&e), Some(550 | 553)) => {
            mkdir_p(&mut conn, &tmp_dir).await?;
            timed(limit, "STOR", conn.ftp().put_with_stream(tmp.as_str())).await
        }
        other => other,
    };
    let mut upload = conn.check(opened).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            StorageError::permanent(format!("the server refused to create a file in '{tmp_dir}' (permissions?)"))
                .with_source(e)
        } else {
            e
        }
    })?;

    let mut size = 0u64;
    let streamed: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            match tokio::time::timeout(limit, upload.write_all(&chunk)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(io_error(e, "uploading")),
                Err(_) => return Err(StorageError::timeout("uploading: the server took no data in time")),
            }
            size += chunk.len() as u64;
        }
        Ok(())
    }
    .await;
    if let Err(e) = streamed {
        // Closing the data connection ends the STOR; the next command reads its reply.
        drop(upload);
        remove_quietly(&mut conn, &tmp).await;
        if e.is_transient() {
            conn.poison();
        }
        return Err(e);
    }
    let finished = timed(limit, "finishing the upload", upload.finish()).await;
    if let Err(e) = conn.check(finished) {
        remove_quietly(&mut conn, &tmp).await;
        return Err(e);
    }

    let mut made_folder = false;
    for _ in 0..NAME_ATTEMPTS {
        let target = full_path(&root, &object_id);
        let probe = timed(limit, "SIZE", conn.ftp().size(target.as_str())).await;
        match conn.check(probe) {
            Ok(_) => {
                tracing::warn!(object_id, "ftp: target name exists; picking a new id");
                object_id = object_id_from_hint(&meta.key_hint);
                continue;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                remove_quietly(&mut conn, &tmp).await;
                return Err(e);
            }
        }
        let renamed = timed(limit, "renaming into place", conn.ftp().rename(tmp.as_str(), target.as_str())).await;
        return match conn.check(renamed) {
            Ok(()) => Ok(WriteReceipt { object_id, size, checksum: None, etag: None, instance: None }),
            // 550: most likely the object's folder does not exist yet.
            Err(e) if e.kind() == ErrorKind::NotFound && !made_folder => {
                if let Err(e) = mkdir_p(&mut conn, &parent_of(&target)).await {
                    remove_quietly(&mut conn, &tmp).await;
                    return Err(e);
                }
                made_folder = true;
                continue;
            }
            Err(e) if e.is_transient() => {
                // The reply was lost: the rename may or may not have happened. Look on a
                // fresh connection, so a retry cannot leave a second copy behind.
                drop(conn);
                match settle_lost_rename(pool, &tmp, &target, size).await {
                    Ok(true) => Ok(WriteReceipt { object_id, size, checksum: None, etag: None, instance: None }),
                    _ => Err(e),
                }
            }
            Err(e) => {
                remove_quietly(&mut conn, &tmp).await;
                Err(e)
            }
        };
    }
    remove_quietly(&mut conn, &tmp).await;
    Err(StorageError::already_exists("every candidate object id already existed"))
}

/// After a rename whose reply was lost: `true` if the target now holds our
/// bytes and the temp file is gone; otherwise the temp file is removed.
async fn settle_lost_rename(pool: &Arc<FtpPool>, tmp: &str, target: &str, size: u64) -> Result<bool> {
    let mut conn = pool.checkout().await?;
    let limit = conn.limit();
    let tmp_size = timed(limit, "SIZE", conn.ftp().size(tmp)).await;
    let tmp_gone = matches!(&tmp_size, Err(e) if e.kind() == ErrorKind::NotFound);
    let target_size = timed(limit, "SIZE", conn.ftp().size(target)).await;
    if tmp_gone && matches!(target_size, Ok(n) if n as u64 == size) {
        return Ok(true);
    }
    conn.check(tmp_size.map(|_| ()))?;
    remove_quietly(&mut conn, tmp).await;
    Ok(false)
}

/// Remove temp files untouched for a day (uploads of connections or
/// processes that died); returns how many went. The LIST time only picks
/// candidates (it is minute-precise server local time); MDTM (UTC, to the
/// second) confirms each one before DELE.
pub(crate) async fn sweep_stale_temp(pool: &Arc<FtpPool>) -> Result<usize> {
    let tmp_dir = full_path(&pool.root().await?, TEMP_DIR);
    let mut conn = pool.checkout().await?;
    let Some(entries) = crate::list::read_folder(pool, &mut conn, &tmp_dir).await? else { return Ok(0) };
    let limit = conn.limit();
    let mut removed = 0;
    for entry in entries.iter().filter(|e| e.is_file() && is_stale_temp(Some(e.modified()))) {
        let path = format!("{tmp_dir}/{}", entry.name());
        let mdtm = timed(limit, "MDTM", conn.ftp().mdtm(path.as_str())).await;
        let Ok(modified) = conn.check(mdtm) else { continue };
        if !is_stale_temp(Some(SystemTime::from(modified.and_utc()))) {
            continue;
        }
        let deleted = timed(limit, "DELE old temp file", conn.ftp().rm(path.as_str())).await;
        match conn.check(deleted) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if removed > 0 {
        tracing::info!(removed, host = %pool.config().host, "ftp: removed temp files left by uploads that died");
    }
    Ok(removed)
}

async fn remove_quietly(conn: &mut Conn, path: &str) {
    let limit = conn.limit();
    let removed = timed(limit, "DELE temp file", conn.ftp().rm(path)).await;
    if let Err(e) = conn.check(removed)
        && e.kind() != ErrorKind::NotFound
    {
        tracing::warn!(path, error = %e, "ftp: could not remove a temp file");
    }
}

/// MKD every missing folder of the absolute path `dir` ("exists" replies are ignored).
pub(crate) async fn mkdir_p(conn: &mut Conn, dir: &str) -> Result<()> {
    let limit = conn.limit();
    let mut path = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        path.push('/');
        path.push_str(part);
        let made = timed(limit, "MKD", conn.ftp().mkdir(path.as_str())).await;
        conn.check(made).or_else(|e| if e.is_transient() || e.kind() == ErrorKind::Auth { Err(e) } else { Ok(()) })?;
    }
    Ok(())
}
