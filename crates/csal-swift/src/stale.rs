//! Segments of Static Large Objects whose manifest never came: the writer
//! died (`kill -9`) between its segment PUTs and the manifest PUT, so no
//! object refers to them and nothing deletes them (Swift has no expiry of
//! its own for them); they cost storage and `list` does not show them.
//!
//! Segments are named `OBJECT-ID/UPLOAD/NUMBER` (write.rs), so one upload's
//! segments are adjacent in the listing of the segment container. An
//! upload whose newest segment is older than `stale_upload_hours` and whose
//! object does not exist is stale; object ids are fresh per write, so an
//! object under that id is that upload's manifest.

use std::time::SystemTime;

use csal_core::{ListRequest, Result, StaleUploads};

use crate::client::SwiftClient;
use crate::list::{SWIFT_MAX, list_container};

/// One upload's segments, as listed.
#[derive(Default)]
struct Upload {
    object_id: String,
    upload: String,
    segments: Vec<String>,
    bytes: u64,
    newest: Option<SystemTime>,
}

/// Count (and with `remove`, delete) the segments of stale uploads.
pub(crate) async fn sweep(client: &SwiftClient, remove: bool) -> Result<StaleUploads> {
    let age = client.settings.stale_upload_age;
    let cutoff = SystemTime::now().checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut found = StaleUploads::default();
    let mut current: Option<Upload> = None;
    let mut request = ListRequest::new("").with_limit(SWIFT_MAX);
    loop {
        let page = list_container(client, &client.settings.segment_container, &request).await?;
        for object in page.objects {
            // Not ours (another writer's naming): left alone.
            let Some((object_id, upload, _number)) = split_segment(&object.object_id) else { continue };
            if current.as_ref().is_none_or(|c| c.object_id != object_id || c.upload != upload) {
                if let Some(done) = current.take() {
                    settle(client, done, age.is_zero(), cutoff, remove, &mut found).await?;
                }
                current =
                    Some(Upload { object_id: object_id.to_owned(), upload: upload.to_owned(), ..Default::default() });
            }
            let entry = current.as_mut().expect("set above");
            entry.bytes += object.size;
            entry.newest = entry.newest.max(object.modified);
            entry.segments.push(object.object_id);
        }
        match page.next_page {
            Some(token) => request = request.with_continuation(Some(token)),
            None => break,
        }
    }
    if let Some(done) = current {
        settle(client, done, age.is_zero(), cutoff, remove, &mut found).await?;
    }
    Ok(found)
}

/// `OBJECT-ID/UPLOAD/NUMBER` (the object id has slashes of its own).
fn split_segment(name: &str) -> Option<(&str, &str, &str)> {
    let (rest, number) = name.rsplit_once('/')?;
    let (object_id, upload) = rest.rsplit_once('/')?;
    let numbered = number.len() == 8 && number.bytes().all(|b| b.is_ascii_digit());
    let ulid = upload.len() == 26 && upload.bytes().all(|b| b.is_ascii_alphanumeric());
    (numbered && ulid && !object_id.is_empty()).then_some((object_id, upload, number))
}

/// Judge one upload: stale when old enough (or `any_age`) and without its object.
async fn settle(
    client: &SwiftClient,
    upload: Upload,
    any_age: bool,
    cutoff: SystemTime,
    remove: bool,
    found: &mut StaleUploads,
) -> Result<()> {
    // Without a modification time it is never taken for stale.
    if !any_age && upload.newest.is_none_or(|newest| newest >= cutoff) {
        return Ok(());
    }
    match crate::read::stat(client, &upload.object_id).await {
        Ok(_) => return Ok(()), // the manifest came: a finished object
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e),
    }
    found.count += 1;
    found.bytes += upload.bytes;
    if remove {
        crate::write::delete_segments(client, &upload.segments).await?;
        tracing::info!(target: "csal_swift", object = %upload.object_id, segments = upload.segments.len(),
            "deleted the segments of an upload that never got its manifest");
        found.removed += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn segment_names_split_into_object_upload_and_number() {
        let name = "cam1/2026-12-04/seg-01M91A22B99XNJ5NV2QGT39Z89.ts/01M91A22B99XNJ5NV2QGT39Z8A/00000003";
        assert_eq!(
            super::split_segment(name),
            Some(("cam1/2026-12-04/seg-01M91A22B99XNJ5NV2QGT39Z89.ts", "01M91A22B99XNJ5NV2QGT39Z8A", "00000003"))
        );
        assert_eq!(super::split_segment("x/01M91A22B99XNJ5NV2QGT39Z8A/3"), None);
        assert_eq!(super::split_segment("x/upload/00000001"), None);
        assert_eq!(super::split_segment("01M91A22B99XNJ5NV2QGT39Z8A/00000001"), None);
    }
}
