//! Entry points for `cargo fuzz` (feature `fuzzing`; not a public API).

/// Decode a caller-supplied continuation token (csal-http's folder walk over
/// this provider's folder type); what decodes re-encodes to a token that
/// decodes the same.
pub fn continuation_token(token: &str) {
    csal_http::fuzz_continuation_token::<String>(token);
}
