//! Downloads (`files::download`, with the SDK's range arguments) and stat
//! (`files::get_metadata`).

use bytes::BytesMut;
use csal_core::{ByteRange, ByteStream, ObjectMeta, Result, StorageError};
use dropbox_sdk::files::{self, DownloadArg, FileMetadata, GetMetadataArg, Metadata};
use futures::{AsyncRead, AsyncReadExt};

use crate::client::{DropboxClient, parse_time};

/// Size of the pieces a download body is read in.
const READ_CHUNK: usize = 256 * 1024;

pub(crate) async fn read(client: &DropboxClient, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    if let Some(r) = &range {
        r.check()?;
    }
    let what = format!("download '{object_id}'");
    let arg = DownloadArg::new(client.path_of(object_id));
    let (start, end) = match range {
        None => (None, None),
        Some(ByteRange::Inclusive { start, end }) => (Some(start), Some(end)),
        Some(ByteRange::From { start }) => (Some(start), None),
        // The SDK sends `bytes=-N` for an end without a start: a suffix.
        Some(ByteRange::Suffix { len }) => (None, Some(len)),
    };
    let call = client.call(&what).await?.with_arg(&arg)?;
    let answer = files::download(&call, &arg, start, end).await.map_err(|e| call.fail(e))?;
    let full_size = answer.result.size;
    let content_length = answer.content_length;
    let reader =
        answer.body.ok_or_else(|| StorageError::transient(format!("{what}: Dropbox answered without a body")))?;
    let stream = reader_stream(reader, what.clone());
    let status = reqwest::StatusCode::from_u16(call.status()).unwrap_or(reqwest::StatusCode::OK);
    let content_range = call.content_range();
    csal_http::ranged_stream(stream, status, content_range.as_deref(), content_length, range, Some(full_size), &what)
}

/// The SDK hands the body over as an `AsyncRead`: read it in pieces.
fn reader_stream(
    reader: Box<dyn AsyncRead + Send + Unpin>,
    what: String,
) -> impl futures::Stream<Item = Result<bytes::Bytes>> + Send + 'static {
    futures::stream::unfold(Some(reader), move |reader| {
        let what = what.clone();
        async move {
            let mut reader = reader?;
            let mut buf = BytesMut::zeroed(READ_CHUNK);
            match reader.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(buf.freeze()), Some(reader)))
                }
                Err(e) => {
                    let kind = if e.kind() == std::io::ErrorKind::TimedOut
                        || e.get_ref()
                            .and_then(|i| i.downcast_ref::<reqwest::Error>())
                            .is_some_and(reqwest::Error::is_timeout)
                    {
                        csal_core::ErrorKind::Timeout
                    } else {
                        csal_core::ErrorKind::Transient
                    };
                    let err = StorageError::new(kind, format!("{what}: the download broke off")).with_source(e);
                    Some((Err(err), None))
                }
            }
        }
    })
}

/// The object of a file entry under the root (folders and others: None).
pub(crate) fn meta_from(client: &DropboxClient, m: &FileMetadata) -> Option<ObjectMeta> {
    let id = client.id_of(m.path_display.as_deref()?)?;
    let mut meta = ObjectMeta::new(id, m.size);
    meta.modified = parse_time(&m.server_modified);
    meta.etag = Some(m.rev.clone());
    if let Some(hash) = &m.content_hash {
        meta.checksum = Some(csal_core::Checksum { algorithm: "dropbox_content_hash".into(), value: hash.clone() });
    }
    Some(meta)
}

pub(crate) async fn stat_raw(client: &DropboxClient, object_id: &str) -> Result<Metadata> {
    let what = format!("stat '{object_id}'");
    let arg = GetMetadataArg::new(client.path_of(object_id));
    let call = client.call(&what).await?;
    files::get_metadata(&call, &arg).await.map_err(|e| call.fail(e))
}

pub(crate) async fn stat(client: &DropboxClient, object_id: &str) -> Result<ObjectMeta> {
    let m = match stat_raw(client, object_id).await? {
        Metadata::File(f) => meta_from(client, &f),
        _ => None,
    };
    let mut meta = m.ok_or_else(|| StorageError::not_found(format!("stat '{object_id}': not a file (a folder?)")))?;
    // Keep the caller's spelling (Dropbox may report another case).
    meta.object_id = object_id.to_owned();
    Ok(meta)
}
