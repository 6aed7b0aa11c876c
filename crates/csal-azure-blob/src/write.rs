//! Writes: a single Put Blob for bodies that fit in one block, else staged
//! blocks (Put Block, fixed-width block ids) committed with Put Block List.
//!
//! Up to `upload_concurrency` blocks are sent at once, each as the body's
//! own chunks (no copy into a block buffer), so memory is bounded by about
//! `block_size × (upload_concurrency + 1)`. Both the Put Blob and the
//! Put Block List carry `If-None-Match: *`, so a write never replaces a
//! blob. A body that fails mid-way leaves only uncommitted blocks, which
//! are invisible and which Azure discards after a week.

use base64::Engine as _;
use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};

use csal_core::{
    BodyPart, ByteStream, Result, RetryPolicy, StorageError, WriteMeta, WriteReceipt, object_id_from_hint, send_parts,
};

use crate::client::AzureClient;

const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// Azure accepts at most this many blocks in one blob.
const MAX_BLOCKS: usize = 50_000;

pub(crate) async fn write(client: &AzureClient, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt> {
    check_metadata(&meta)?;
    let name = object_id_from_hint(&meta.key_hint);
    let url = client.blob_url(&name)?;
    let what = format!("write {name}");
    let content_type = meta.content_type.clone().unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
    let with_properties = |mut request: reqwest::RequestBuilder| {
        request = request.header("x-ms-blob-content-type", content_type.as_str()).header(IF_NONE_MATCH, "*");
        for (k, v) in &meta.metadata {
            request = request.header(format!("x-ms-meta-{k}"), v.as_str());
        }
        request
    };

    // A body known to be longer than one block goes up in blocks without
    // waiting for its second block to decide.
    let over_one_block = body.size().is_some_and(|size| size > client.settings.block_size as u64);
    let replayable = body.is_replayable();
    let mut parts = Box::pin(body.into_chunked_parts_marking_if_single(client.settings.block_size));
    let (first, is_last) = match parts.next().await {
        Some(part) => part?,
        None => (BodyPart::default(), true),
    };
    let (size, etag) = if !over_one_block && is_last {
        // One contiguous buffer, so a request refused for its token can be
        // sent again as it is (a streamed body cannot).
        let attempts = RetryPolicy::single_request_attempts(replayable, client.settings.block_attempts);
        let size = first.len() as u64;
        let data = first.into_bytes();
        let put = |_| {
            let request =
                client.http.put(url.clone()).header("x-ms-blob-type", "BlockBlob").header(CONTENT_LENGTH, size);
            send_new_blob(client, with_properties(request.body(data.clone())), &what)
        };
        (size, RetryPolicy::in_place(attempts).resend_write(&what, || stored_earlier(client, &name, size), put).await?)
    } else {
        let blocks = futures::stream::iter([Ok(first)]).chain(parts.map(|part| part.map(|(block, _)| block)));
        let (size, ids) = send_parts(blocks, client.settings.upload_concurrency, |index, block| {
            let (name, what) = (&name, &what);
            async move {
                if index >= MAX_BLOCKS {
                    return Err(StorageError::invalid_input(format!(
                        "{what}: the body needs more than {MAX_BLOCKS} blocks; raise block_size_kib"
                    )));
                }
                let id = block_id(index);
                put_block(client, name, &id, block).await?;
                Ok(id)
            }
        })
        .await?;
        let mut list = String::with_capacity(64 + ids.len() * 48);
        list.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for id in &ids {
            list.push_str("<Latest>");
            list.push_str(id);
            list.push_str("</Latest>");
        }
        list.push_str("</BlockList>");
        let mut commit_url = client.blob_url(&name)?;
        commit_url.query_pairs_mut().append_pair("comp", "blocklist");
        // The blocks are staged, so a failed commit is sent again (always:
        // a replayable body would otherwise go up again as a whole).
        let what = format!("{what} (commit block list)");
        let commit = |_| {
            let request = client
                .http
                .put(commit_url.clone())
                .header(CONTENT_TYPE, "application/xml")
                .header(CONTENT_LENGTH, list.len() as u64)
                .body(list.clone());
            send_new_blob(client, with_properties(request), &what)
        };
        let stored = || stored_earlier(client, &name, size);
        (size, RetryPolicy::in_place(client.settings.block_attempts).resend_write(&what, stored, commit).await?)
    };
    // The core layer's tally has the body's CRC32C; it fills the receipt's.
    Ok(WriteReceipt { object_id: name, size, checksum: None, etag, instance: None })
}

/// Block ids: base64 of a fixed-width counter (all ids of a blob must have
/// the same length).
fn block_id(index: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("csal-block-{index:08}"))
}

/// Stage one block; a transient failure sends the same block (same id)
/// again, which simply replaces the uncommitted copy.
async fn put_block(client: &AzureClient, name: &str, id: &str, data: BodyPart) -> Result<()> {
    let what = format!("write {name} (put block)");
    let mut url = client.blob_url(name)?;
    url.query_pairs_mut().append_pair("comp", "block").append_pair("blockid", id);
    RetryPolicy::in_place(client.settings.block_attempts)
        .resend(&what, |_| {
            let request = client
                .http
                .put(url.clone())
                .header(CONTENT_LENGTH, data.len() as u64)
                .body(csal_http::part_body(&data));
            async { client.send(request, &what).await.map(drop) }
        })
        .await
}

/// Send a request that makes the blob (`If-None-Match: *`); its ETag.
async fn send_new_blob(client: &AzureClient, request: reqwest::RequestBuilder, what: &str) -> Result<Option<String>> {
    let response = client.send(request, what).await?;
    Ok(response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(|s| s.trim_matches('"').to_owned()))
}

/// The blob an earlier attempt of this write made (its answer was lost),
/// if it has our size: its ETag. The name is fresh (a new ULID), so only
/// this write can have put anything there.
async fn stored_earlier(client: &AzureClient, name: &str, size: u64) -> Result<Option<Option<String>>> {
    let meta = crate::read::stat(client, name).await?;
    Ok((meta.size == size).then_some(meta.etag))
}

/// Metadata names must be C# identifiers and values ASCII (they travel as
/// `x-ms-meta-*` headers).
fn check_metadata(meta: &WriteMeta) -> Result<()> {
    for (k, v) in &meta.metadata {
        let ident = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident {
            return Err(StorageError::invalid_input(format!(
                "metadata name {k:?} is not allowed by Azure (letters, digits and '_', not starting with a digit)"
            )));
        }
        if !v.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
            return Err(StorageError::invalid_input(format!("metadata value of {k:?} must be printable ASCII")));
        }
    }
    if let Some(ct) = &meta.content_type
        && !ct.chars().all(|c| c == ' ' || c.is_ascii_graphic())
    {
        return Err(StorageError::invalid_input("content type must be printable ASCII"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_have_one_length() {
        assert_eq!(block_id(0).len(), block_id(49_999).len());
        assert_ne!(block_id(1), block_id(2));
    }

    #[test]
    fn metadata_names_must_be_identifiers() {
        let mut meta = WriteMeta::new("x");
        meta.metadata.insert("camera".into(), "cam-5".into());
        check_metadata(&meta).unwrap();
        meta.metadata.insert("bad-name".into(), "x".into());
        assert_eq!(check_metadata(&meta).unwrap_err().kind(), csal_core::ErrorKind::InvalidInput);
    }
}
