//! Entry points for `cargo fuzz` (feature `fuzzing`; not a public API).

use std::sync::OnceLock;

use crate::client::{DavClient, parse_base};
use crate::config::DavAuth;

fn client() -> &'static DavClient {
    static CLIENT: OnceLock<DavClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let base = parse_base("url", "http://127.0.0.1:1/dav/files/t%C3%BC/").expect("valid base");
        DavClient::new(reqwest::Client::new(), base, DavAuth::None, None, None).expect("client")
    })
}

/// Parse a PROPFIND multistatus answer; every entry must be a usable id.
pub fn multistatus(text: &str) {
    if let Ok(entries) = crate::list::parse_multistatus(client(), text.as_bytes(), "fuzz") {
        for e in entries {
            assert!(e.rel.is_empty() || e.is_dir || !e.rel.starts_with('/'), "entry {:?} escapes the base", e.rel);
        }
    }
}
