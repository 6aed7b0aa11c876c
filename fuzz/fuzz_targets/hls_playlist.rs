//! The HLS playlists recorders PUT (`csal_spool::hls`): never panics; what
//! it accepts names only valid segment names with durations in range; a VOD
//! playlist written from those entries reads back to the same entries.
#![no_main]

use csal_spool::hls::{VOD_END, VodEntry, parse_media_playlist, vod_header, vod_lines};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(parsed) = parse_media_playlist(text) else { return };
    for e in &parsed.entries {
        assert!(csal_spool::names::check_segment_name(&e.name).is_ok(), "{:?}", e.name);
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
    let names: Vec<(&str, i64)> = again.entries.iter().map(|e| (e.name.as_str(), e.duration_ms)).collect();
    let want: Vec<(&str, i64)> = entries.iter().map(|e| (e.name.as_str(), e.duration_ms)).collect();
    assert_eq!(names, want);
});
