//! Entry points for `cargo fuzz` (feature `fuzzing`; not a public API).

/// Decode a caller-supplied continuation token; what decodes re-encodes to
/// a token that decodes the same.
pub fn continuation_token(token: &str) {
    if let Some(walk) = crate::list::decode(token) {
        let again = crate::list::encode(&walk);
        let back = crate::list::decode(&again).expect("an encoded walk decodes");
        assert_eq!(crate::list::encode(&back), again);
    }
}
