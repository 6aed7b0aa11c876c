//! The HLS fuzz target's property over its seed corpus (and every input a
//! fuzzer run adds there): the parser never panics, accepts only valid
//! segment names with durations in range, and what the VOD writer makes of
//! its entries reads back the same.

use csal_spool::hls::{VOD_END, VodEntry, parse_media_playlist, vod_header, vod_lines};

#[test]
fn every_corpus_playlist_parses_without_panic_and_round_trips() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/hls_playlist");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus is in the repo") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        seen += 1;
        let Ok(text) = std::str::from_utf8(&data) else { continue };
        let Ok(parsed) = parse_media_playlist(text) else { continue };
        for e in &parsed.entries {
            assert!(csal_spool::names::check_segment_name(&e.name).is_ok(), "{:?}", e.name);
            assert!((0..=86_400_000).contains(&e.duration_ms), "{e:?}");
        }
        let entries: Vec<VodEntry> = parsed
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| VodEntry {
                name: e.name.clone(),
                start_ms: i as i64 * 86_400_001,
                duration_ms: e.duration_ms,
            })
            .collect();
        let mut vod = vod_header(entries.iter().map(|e| e.duration_ms).max().unwrap_or(0));
        vod_lines(&entries, &mut None, &mut vod);
        vod.push_str(VOD_END);
        let again = parse_media_playlist(&vod).unwrap();
        let got: Vec<(&str, i64)> = again.entries.iter().map(|e| (e.name.as_str(), e.duration_ms)).collect();
        let want: Vec<(&str, i64)> = entries.iter().map(|e| (e.name.as_str(), e.duration_ms)).collect();
        assert_eq!(got, want);
    }
    assert!(seen >= 3, "seed corpus missing");
}
