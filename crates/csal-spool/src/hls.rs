//! HLS media playlists (RFC 8216): reading what a recorder PUTs, writing
//! the VOD playlists players fetch.
//!
//! A recorder's live playlist is not stored; it only dates segments:
//! `#EXTINF` gives each one's duration, `#EXT-X-PROGRAM-DATE-TIME` the wall
//! clock of the next segment, and the segments after it follow on by their
//! durations (RFC 8216 §4.3.2.6) until a `#EXT-X-DISCONTINUITY` breaks the
//! chain.

use csal_core::{Result, StorageError};

use crate::names::check_segment_name;

/// Largest playlist accepted (a live window is a few kB).
pub const MAX_PLAYLIST_BYTES: usize = 1 << 20;
/// Most segments read from one playlist.
const MAX_ENTRIES: usize = 20_000;

/// One segment named by a playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistEntry {
    /// The segment name: the last path part of its URI, without query.
    pub name: String,
    /// The `#EXTINF` duration.
    pub duration_ms: i64,
    /// Wall-clock start (Unix ms), when the playlist dates it.
    pub start_ms: Option<i64>,
}

/// What a playlist said, plus the URIs it named that are not segment names
/// we accept (reported, not fatal: a playlist may name other files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedPlaylist {
    /// The segments, in playlist order.
    pub entries: Vec<PlaylistEntry>,
    /// URIs that are not segment names we accept.
    pub skipped: Vec<String>,
}

/// Read a media playlist. `InvalidInput` when it is not one (no
/// `#EXTM3U`, an `#EXTINF` that is not a number, a URI without `#EXTINF`).
pub fn parse_media_playlist(text: &str) -> Result<ParsedPlaylist> {
    if text.len() > MAX_PLAYLIST_BYTES {
        return Err(StorageError::invalid_input(format!("playlist larger than {MAX_PLAYLIST_BYTES} bytes")));
    }
    let mut lines = text.lines().map(|l| l.trim()).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err(StorageError::invalid_input("not an HLS playlist: the first line must be #EXTM3U"));
    }
    let mut out = ParsedPlaylist::default();
    let mut duration_ms: Option<i64> = None;
    // The wall clock of the next segment, when known.
    let mut clock_ms: Option<i64> = None;
    for (n, line) in lines.enumerate() {
        let bad = |why: String| StorageError::invalid_input(format!("playlist line {}: {why}", n + 2));
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            let number = rest.split(',').next().unwrap_or("").trim();
            let seconds: f64 =
                number.parse().map_err(|_| bad(format!("#EXTINF duration '{number}' is not a number")))?;
            if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
                return Err(bad(format!("#EXTINF duration {seconds} is out of range")));
            }
            duration_ms = Some((seconds * 1000.0).round() as i64);
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            let at = csal_core::time_format::parse_rfc3339(rest.trim())
                .ok_or_else(|| bad(format!("#EXT-X-PROGRAM-DATE-TIME '{}' is not an RFC 3339 time", short(rest))))?;
            clock_ms = Some(csal_catalog::time_to_ms(at));
        } else if line == "#EXT-X-DISCONTINUITY" {
            clock_ms = None;
        } else if line.starts_with('#') {
            // Other tags (version, target duration, sequence, ...) say nothing about times.
        } else {
            let duration = duration_ms.take().ok_or_else(|| bad(format!("URI '{}' has no #EXTINF", short(line))))?;
            let name = uri_name(line);
            let start = clock_ms;
            clock_ms = clock_ms.map(|c| c.saturating_add(duration));
            if check_segment_name(name).is_ok() {
                if out.entries.len() >= MAX_ENTRIES {
                    return Err(bad(format!("more than {MAX_ENTRIES} segments")));
                }
                out.entries.push(PlaylistEntry { name: name.to_owned(), duration_ms: duration, start_ms: start });
            } else {
                out.skipped.push(short(line));
            }
        }
    }
    Ok(out)
}

/// The last path part of a URI, without query or fragment.
fn uri_name(uri: &str) -> &str {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    let path = &uri[..end];
    path.rsplit('/').next().unwrap_or(path)
}

fn short(s: &str) -> String {
    s.chars().take(80).flat_map(char::escape_default).collect()
}

/// One segment of a VOD playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VodEntry {
    /// The segment name.
    pub name: String,
    /// Wall-clock start (Unix ms), for `#EXT-X-PROGRAM-DATE-TIME`.
    pub start_ms: i64,
    /// The `#EXTINF` duration.
    pub duration_ms: i64,
}

/// Segments further apart than this start a new discontinuity (a gap in
/// the recording, or a recorder restart with new timestamps).
const GAP_MS: i64 = 500;

/// The head of a VOD playlist whose longest segment lasts `max_duration_ms`.
pub fn vod_header(max_duration_ms: i64) -> String {
    let target = (max_duration_ms.max(1) + 999) / 1000;
    format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n"
    )
}

/// Lines of a VOD playlist for `entries` (in time order), continuing after
/// the segment that ended at `previous_end_ms`. URIs are relative to the
/// playlist: `segments/{name}`.
pub fn vod_lines(entries: &[VodEntry], previous_end_ms: &mut Option<i64>, out: &mut String) {
    use std::fmt::Write;
    for e in entries {
        let gap = previous_end_ms.is_none_or(|end| (e.start_ms - end).abs() > GAP_MS);
        if gap {
            if previous_end_ms.is_some() {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.start_ms.max(0) as u64);
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", humantime::format_rfc3339_millis(at));
        }
        let _ = writeln!(out, "#EXTINF:{}.{:03},", e.duration_ms / 1000, e.duration_ms % 1000);
        let _ = writeln!(out, "segments/{}", e.name);
        *previous_end_ms = Some(e.start_ms + e.duration_ms);
    }
}

/// The end of a VOD playlist.
pub const VOD_END: &str = "#EXT-X-ENDLIST\n";

/// The property the `hls_playlist` fuzz target and the corpus test check,
/// written once: any input parses without panicking; what is accepted names
/// only valid segment names with durations in range; a VOD playlist
/// written from those entries reads back to the same entries. Panics when
/// the property does not hold (that is how a fuzzer finds it).
#[doc(hidden)]
pub fn check_playlist_property(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = parse_media_playlist(text) else { return };
    for e in &parsed.entries {
        assert!(check_segment_name(&e.name).is_ok(), "{:?}", e.name);
        assert!((0..=86_400_000).contains(&e.duration_ms), "{e:?}");
    }
    let entries: Vec<VodEntry> = parsed
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| VodEntry { name: e.name.clone(), start_ms: i as i64 * 86_400_001, duration_ms: e.duration_ms })
        .collect();
    let mut vod = vod_header(entries.iter().map(|e| e.duration_ms).max().unwrap_or(0));
    vod_lines(&entries, &mut None, &mut vod);
    vod.push_str(VOD_END);
    let again = parse_media_playlist(&vod).expect("a VOD playlist we wrote reads back");
    let got: Vec<(&str, i64)> = again.entries.iter().map(|e| (e.name.as_str(), e.duration_ms)).collect();
    let want: Vec<(&str, i64)> = entries.iter().map(|e| (e.name.as_str(), e.duration_ms)).collect();
    assert_eq!(got, want);
}

#[cfg(test)]
mod tests {
    use super::*;

    const FFMPEG: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:3\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-12-04T13:00:00.000+0000\n#EXTINF:2.000000,\nseg3.ts\n\
        #EXTINF:1.960000,\nhttp://127.0.0.1:8080/v1/cameras/c/segments/seg4.ts?x=1\n\
        #EXT-X-DISCONTINUITY\n#EXTINF:2.0,\nseg5.ts\n";

    #[test]
    fn reads_durations_and_dates_following_on() {
        let p = parse_media_playlist(FFMPEG).unwrap();
        let t0 = 1_796_389_200_000;
        assert_eq!(
            p.entries,
            vec![
                PlaylistEntry { name: "seg3.ts".into(), duration_ms: 2000, start_ms: Some(t0) },
                PlaylistEntry { name: "seg4.ts".into(), duration_ms: 1960, start_ms: Some(t0 + 2000) },
                PlaylistEntry { name: "seg5.ts".into(), duration_ms: 2000, start_ms: None },
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_a_media_playlist() {
        for bad in ["", "hello", "#EXTM3U\nseg.ts\n", "#EXTM3U\n#EXTINF:abc,\nseg.ts\n", "#EXTM3U\n#EXTINF:-1,\ns.ts\n"]
        {
            assert!(parse_media_playlist(bad).is_err(), "{bad:?}");
        }
        let p = parse_media_playlist("#EXTM3U\n#EXTINF:1,\n../../etc/passwd\n#EXTINF:1,\nbad%00.ts\n").unwrap();
        assert_eq!(p.entries.len(), 1, "the last path part of ../../etc/passwd is 'passwd', a plain name");
        assert_eq!(p.skipped.len(), 1);
        let huge = format!("#EXTM3U\n{}", "#EXT-X-FOO\n".repeat(MAX_PLAYLIST_BYTES / 10));
        assert!(parse_media_playlist(&huge).is_err());
    }

    #[test]
    fn vod_marks_gaps_and_dates_each_run() {
        let entries = vec![
            VodEntry { name: "a.ts".into(), start_ms: 1_000_000, duration_ms: 2000 },
            VodEntry { name: "b.ts".into(), start_ms: 1_002_000, duration_ms: 1500 },
            VodEntry { name: "c.ts".into(), start_ms: 1_010_000, duration_ms: 2000 },
        ];
        let mut text = vod_header(2000);
        let mut end = None;
        vod_lines(&entries, &mut end, &mut text);
        text.push_str(VOD_END);
        assert!(text.contains("#EXT-X-TARGETDURATION:2\n"));
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY").count(), 1);
        assert_eq!(text.matches("#EXT-X-PROGRAM-DATE-TIME").count(), 2);
        assert!(text.contains("#EXTINF:1.500,\nsegments/b.ts\n"));
        let reread = parse_media_playlist(&text).unwrap();
        assert_eq!(
            reread.entries.iter().map(|e| e.start_ms.unwrap()).collect::<Vec<_>>(),
            [1_000_000, 1_002_000, 1_010_000]
        );
    }
}
