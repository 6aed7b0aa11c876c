//! Server-side copy: the bytes never pass through CSAL.
//!
//! Up to 5 GiB one `CopyObject`; above, a multipart upload whose parts are
//! `UploadPartCopy` byte ranges of the source (S3's limit for a single copy).
//! The new object gets a fresh id (never the source, never an existing key),
//! the caller's content type and metadata (`MetadataDirective: REPLACE`),
//! and the source's kept CRC32C (`csal-crc32c`): the bytes are the same.

use aws_sdk_s3::types::{CompletedPart, MetadataDirective};
use csal_core::{Result, StorageError, WriteMeta, WriteReceipt, object_id_from_hint};
use futures::StreamExt;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::client::S3Client;
use crate::config::MAX_PARTS;
use crate::error::map_sdk_error;
use crate::write::{CRC32C_METADATA, Uploader, new_object_settings};

/// The largest object one `CopyObject` may copy.
pub(crate) const COPY_OBJECT_MAX: u64 = 5 << 30;
/// The smallest part S3 accepts (all but the last).
const MIN_PART: u64 = 5 << 20;
/// `x-amz-copy-source` is `bucket/key`, URL-encoded except the slashes.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

impl Uploader {
    /// Copy `object_id` to a new object named from `meta.key_hint`; objects
    /// over `single_max` bytes are copied in parts of at least `part_size`.
    pub(crate) async fn copy(
        &self,
        client: &S3Client,
        object_id: &str,
        meta: &WriteMeta,
        single_max: u64,
    ) -> Result<WriteReceipt> {
        let source = client.head(object_id).await?;
        let new_id = object_id_from_hint(&meta.key_hint);
        let key = client.key(&new_id);
        let what = format!("copy '{object_id}' to '{new_id}'");
        let copy_source =
            utf8_percent_encode(&format!("{}/{}", client.bucket, client.key(object_id)), COPY_SOURCE).to_string();
        let mut meta = meta.clone();
        if let Some(kept) = &source.checksum {
            meta.metadata.insert(CRC32C_METADATA.to_owned(), kept.value.clone());
        }
        let etag = if source.size <= single_max {
            let mut req = client
                .sdk
                .copy_object()
                .bucket(&client.bucket)
                .key(&key)
                .copy_source(&copy_source)
                .metadata_directive(MetadataDirective::Replace);
            req = new_object_settings!(req, self, meta);
            let out = req.send().await.map_err(|e| map_sdk_error(e, &what))?;
            self.locked_or_removed(client, &new_id).await?;
            out.copy_object_result().and_then(|r| r.e_tag()).map(|e| e.trim_matches('"').to_owned())
        } else {
            let part = (self.part_size as u64).max(MIN_PART).max(source.size.div_ceil(MAX_PARTS));
            let size = source.size;
            let (key, what, copy_source) = (key.as_str(), what.as_str(), copy_source.as_str());
            let fill = |upload_id: String| async move {
                let ranges = (0..size.div_ceil(part)).map(|i| (i as i32 + 1, i * part, ((i + 1) * part).min(size) - 1));
                let parts = futures::stream::iter(ranges)
                    .map(|(number, first, last)| {
                        let upload_id = upload_id.as_str();
                        async move {
                            let out = client
                                .sdk
                                .upload_part_copy()
                                .bucket(&client.bucket)
                                .key(key)
                                .upload_id(upload_id)
                                .part_number(number)
                                .copy_source(copy_source)
                                .copy_source_range(format!("bytes={first}-{last}"))
                                .send()
                                .await
                                .map_err(|e| map_sdk_error(e, &format!("{what} (part {number})")))?;
                            let etag = out.copy_part_result().and_then(|r| r.e_tag()).ok_or_else(|| {
                                StorageError::transient(format!("{what} (part {number}): server gave no ETag"))
                            })?;
                            Ok::<_, StorageError>(CompletedPart::builder().part_number(number).e_tag(etag).build())
                        }
                    })
                    .buffered(self.concurrency)
                    .collect::<Vec<_>>()
                    .await;
                Ok((size, parts.into_iter().collect::<Result<Vec<_>>>()?))
            };
            self.multipart(client, key, what, &meta, false, fill).await?.1
        };
        Ok(WriteReceipt { object_id: new_id, size: source.size, checksum: source.checksum, etag, instance: None })
    }
}
