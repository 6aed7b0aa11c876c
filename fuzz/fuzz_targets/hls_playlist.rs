//! The HLS playlists recorders PUT (`csal_spool::hls`): never panics; what
//! it accepts names only valid segment names with durations in range; a VOD
//! playlist written from those entries reads back to the same entries (the
//! property lives in csal-spool, shared with its corpus test).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| csal_spool::hls::check_playlist_property(data));
