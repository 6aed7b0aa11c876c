//! The HLS fuzz target's property (`check_playlist_property`) over its seed
//! corpus and every input a fuzzer run adds there.

#[test]
fn every_corpus_playlist_parses_without_panic_and_round_trips() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/hls_playlist");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus is in the repo") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        csal_spool::hls::check_playlist_property(&data);
        seen += 1;
    }
    assert!(seen >= 3, "seed corpus missing");
}
