//! Playing recordings back: one segment (whole or a byte range) from this
//! node's spool or from the first target that holds it, and VOD playlists
//! built from the index, streamed page by page.

use std::ops::Range;

use csal_catalog::{CopyState, SegmentQuery, SegmentRecord};
use csal_core::{ByteRange, ByteStream, Checksum, ErrorKind, HealthStatus, Result, StorageError, StorageModule};
use futures::StreamExt;

use crate::Gateway;
use crate::hls::{VOD_END, VodEntry, vod_header, vod_lines};
use crate::names::{check_camera_id, check_segment_name};

/// A segment's bytes (all, or the requested range) and where they come from.
pub struct SegmentBody {
    /// The indexed segment.
    pub record: SegmentRecord,
    /// The bytes served, within the segment (`0..size` for a whole read).
    pub span: Range<u64>,
    /// `spool` or the target's name.
    pub source: String,
    /// The bytes.
    pub stream: ByteStream,
}

impl std::fmt::Debug for SegmentBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentBody")
            .field("record", &self.record)
            .field("span", &self.span)
            .field("source", &self.source)
            .finish()
    }
}

/// Segments per page when building playlists.
const PAGE: u32 = 1000;

impl Gateway {
    /// A camera's segment, `NotFound` when not indexed.
    pub async fn segment(&self, camera_id: &str, name: &str) -> Result<SegmentRecord> {
        check_camera_id(camera_id)?;
        check_segment_name(name)?;
        self.inner
            .catalog
            .segment(camera_id, name)
            .await?
            .ok_or_else(|| StorageError::not_found(format!("camera '{camera_id}' has no segment named '{name}'")))
    }

    /// Open a segment for reading: from the spool when this node still
    /// holds it, else from its stored copies, most preferred healthy
    /// target first. A whole read is checked against the indexed CRC32C as
    /// it streams (a mismatch ends the stream with `Integrity`).
    pub async fn open_segment(&self, camera_id: &str, name: &str, range: Option<ByteRange>) -> Result<SegmentBody> {
        let record = self.segment(camera_id, name).await?;
        let span = match range {
            Some(r) => r.resolve(record.size)?,
            None => 0..record.size,
        };
        let whole = span.start == 0 && span.end == record.size;
        let mut reasons = Vec::new();
        if record.spooled && record.node_id == self.node_id() {
            match self.open_spooled(&record, &span, whole).await {
                Ok(stream) => return Ok(self.body(record, span, "spool".into(), stream)),
                Err(e) => reasons.push(format!("spool: {}", e.message())),
            }
        }
        let copies = self.inner.catalog.segment_copies(&record.id).await?;
        let order = self.inner.catalog.get_policy(camera_id).await.map(|p| p.targets).unwrap_or_default();
        let router = self.inner.catalog.router();
        let mut stored: Vec<_> = copies.into_iter().filter(|c| c.state == CopyState::Stored).collect();
        stored.sort_by_key(|c| {
            let offline = router
                .module(&c.target)
                .ok()
                .and_then(|m| m.last_health())
                .is_some_and(|h| h.status == HealthStatus::Offline);
            (offline, order.iter().position(|t| t == &c.target).unwrap_or(usize::MAX))
        });
        for copy in stored {
            let Some(object_id) = copy.object_id.as_deref() else { continue };
            let read = match router.module(&copy.target) {
                Ok(module) if whole => module.read_verified(object_id, &indexed_checksum(&record)).await,
                Ok(module) => module.read(object_id, range).await,
                Err(e) => Err(e),
            };
            match read {
                Ok(stream) => return Ok(self.body(record, span.clone(), copy.target, stream)),
                Err(e) => reasons.push(format!("{}: {}", copy.target, e.message())),
            }
        }
        if reasons.is_empty() {
            reasons.push(if record.spooled { "spooled on another node".into() } else { "no stored copy".into() });
        }
        Err(StorageError::new(
            ErrorKind::Unavailable,
            format!("segment '{name}' of camera '{camera_id}' cannot be read now ({})", reasons.join("; ")),
        ))
    }

    /// The spooled file (a whole read checked like a stored copy).
    async fn open_spooled(&self, record: &SegmentRecord, span: &Range<u64>, whole: bool) -> Result<ByteStream> {
        let file = tokio::fs::File::open(self.inner.spool.segment_path(&record.id)).await?;
        let stream = ByteStream::from_file_range(file, span.start, span.end - span.start).await?;
        if whole { stream.verify(&indexed_checksum(record), &format!("segment '{}'", record.name)) } else { Ok(stream) }
    }

    fn body(&self, record: SegmentRecord, span: Range<u64>, source: String, stream: ByteStream) -> SegmentBody {
        let stream = stream.expect_len(span.end - span.start);
        SegmentBody { record, span, source, stream }
    }

    /// An HLS VOD playlist of a camera's segments overlapping `[from, to)`
    /// (Unix ms; both optional), streamed page by page so a month of
    /// segments never sits in memory. `NotFound` when no segment matches.
    pub async fn vod_playlist(
        &self,
        camera_id: &str,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<futures::stream::BoxStream<'static, Result<String>>> {
        check_camera_id(camera_id)?;
        let catalog = self.inner.catalog.clone();
        let camera = camera_id.to_owned();
        let first = catalog.list_segments(&camera, &SegmentQuery { from_ms, to_ms, after: None, limit: PAGE }).await?;
        if first.is_empty() {
            return Err(StorageError::not_found(format!("camera '{camera}' has no segments in that time range")));
        }
        let max_duration = catalog.max_segment_duration(&camera, from_ms, to_ms).await?.max(1000);
        struct State {
            page: Vec<SegmentRecord>,
            previous_end: Option<i64>,
            header: Option<String>,
            done: bool,
        }
        let state = State { page: first, previous_end: None, header: Some(vod_header(max_duration)), done: false };
        Ok(futures::stream::unfold(state, move |mut st| {
            let catalog = catalog.clone();
            let camera = camera.clone();
            async move {
                if st.done {
                    return None;
                }
                let mut text = st.header.take().unwrap_or_default();
                if st.page.is_empty() {
                    st.done = true;
                    text.push_str(VOD_END);
                    return Some((Ok(text), st));
                }
                let entries: Vec<VodEntry> = st.page.iter().map(|s| vod_entry(s, max_duration)).collect();
                vod_lines(&entries, &mut st.previous_end, &mut text);
                let last = st.page.last().map(|s| (s.start_ms, s.name.clone()));
                let next = if st.page.len() < PAGE as usize {
                    Ok(Vec::new())
                } else {
                    catalog.list_segments(&camera, &SegmentQuery { from_ms, to_ms, after: last, limit: PAGE }).await
                };
                match next {
                    Ok(page) => st.page = page,
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e), st));
                    }
                }
                Some((Ok(text), st))
            }
        })
        .boxed())
    }
}

/// A segment's playlist entry. A duration nobody told us (no playlist, no
/// `X-Csal-Duration`) is taken to be the window's longest, so players
/// still fetch the segment and find its real length in its timestamps.
/// The CRC32C the index holds for a segment, as a checksum to verify against.
fn indexed_checksum(record: &SegmentRecord) -> Checksum {
    Checksum { algorithm: "crc32c".into(), value: record.crc32c.clone() }
}

fn vod_entry(s: &SegmentRecord, longest_ms: i64) -> VodEntry {
    let duration_ms = s.duration_ms.unwrap_or(longest_ms).max(0);
    VodEntry { name: s.name.clone(), start_ms: s.start_ms, duration_ms }
}
