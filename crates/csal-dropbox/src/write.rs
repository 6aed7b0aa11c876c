//! Uploads: one `files::upload` call for a body of at most one chunk, an
//! upload session (`upload_session_start` / `append_v2` / `finish`) for
//! anything larger. Memory: at most two chunks (the one being sent and the
//! next one being filled). `mode: add` + `autorename: false` +
//! `strict_conflict: true`: Dropbox refuses to replace anything, so a clash
//! is `AlreadyExists`.

use bytes::Bytes;
use csal_core::{ByteStream, Result, StorageError, WriteMeta, WriteReceipt, object_id_from_hint};
use dropbox_sdk::files::{
    self, CommitInfo, FileMetadata, UploadArg, UploadSessionAppendArg, UploadSessionAppendError, UploadSessionCursor,
    UploadSessionFinishArg, UploadSessionStartArg, WriteMode,
};
use futures::StreamExt;

use crate::client::DropboxClient;

/// Never overwrite, never rename: a clash is an error.
fn commit_info(path: &str) -> CommitInfo {
    CommitInfo::new(path.to_owned())
        .with_mode(WriteMode::Add)
        .with_autorename(false)
        .with_mute(true)
        .with_strict_conflict(true)
}

pub(crate) async fn write(
    client: &DropboxClient,
    chunk_size: usize,
    body: ByteStream,
    meta: WriteMeta,
) -> Result<WriteReceipt> {
    let object_id = object_id_from_hint(&meta.key_hint);
    let path = client.path_of(&object_id);
    let what = format!("upload '{object_id}'");
    let mut parts = Box::pin(body.into_parts(chunk_size));
    let first = parts.next().await.transpose()?.unwrap_or_default();
    let second = if first.len() == chunk_size { parts.next().await.transpose()? } else { None };

    let (metadata, size): (FileMetadata, u64) = match second {
        None => {
            // Small body: one call.
            let size = first.len() as u64;
            let arg = UploadArg::new(path.clone())
                .with_mode(WriteMode::Add)
                .with_autorename(false)
                .with_mute(true)
                .with_strict_conflict(true);
            let call = client.call(&what).await?.with_arg(&arg)?;
            let m = files::upload(&call, &arg, first).await.map_err(|e| call.fail(e))?;
            (m, size)
        }
        Some(second) => {
            let arg = UploadSessionStartArg::default().with_close(false);
            let call = client.call(&what).await?.with_arg(&arg)?;
            let started = files::upload_session_start(&call, &arg, first.clone()).await.map_err(|e| call.fail(e))?;
            let session_id = started.session_id;
            let mut offset = first.len() as u64;
            drop(first);
            let mut pending: Bytes = second;
            while let Some(next) = parts.next().await.transpose()? {
                append(client, &session_id, offset, pending.clone(), &what).await?;
                offset += pending.len() as u64;
                pending = next;
            }
            let size = offset + pending.len() as u64;
            let arg = UploadSessionFinishArg::new(UploadSessionCursor::new(session_id, offset), commit_info(&path));
            let call = client.call(&what).await?.with_arg(&arg)?;
            let m = files::upload_session_finish(&call, &arg, pending).await.map_err(|e| call.fail(e))?;
            (m, size)
        }
    };
    if metadata.size != size {
        return Err(StorageError::integrity(format!("{what}: Dropbox stored {} bytes, we sent {size}", metadata.size)));
    }
    Ok(WriteReceipt { object_id, size, checksum: None, etag: Some(metadata.rev), instance: None })
}

/// One `append_v2`. An `incorrect_offset` whose `correct_offset` is exactly
/// past this chunk means Dropbox already has it (our earlier try's answer
/// was lost): that is success.
async fn append(client: &DropboxClient, session_id: &str, offset: u64, chunk: Bytes, what: &str) -> Result<()> {
    let len = chunk.len() as u64;
    let arg = UploadSessionAppendArg::new(UploadSessionCursor::new(session_id.to_owned(), offset)).with_close(false);
    let call = client.call(what).await?.with_arg(&arg)?;
    match files::upload_session_append_v2(&call, &arg, chunk).await {
        Ok(()) => Ok(()),
        Err(dropbox_sdk::Error::Api(UploadSessionAppendError::IncorrectOffset(o)))
            if o.correct_offset == offset + len =>
        {
            Ok(())
        }
        Err(e) => Err(call.fail(e)),
    }
}
