//! Entry points for `cargo fuzz` (feature `fuzzing`; not a public API).

/// Parse a List Blobs answer; every listed id must pass the id check.
pub fn list_blobs(body: &[u8]) {
    if let Ok(page) = crate::list::parse_listing(body, &csal_core::ListRequest::default(), "fuzz") {
        for o in page.objects {
            csal_core::check_object_id(&o.object_id).expect("listed ids are valid ids");
        }
    }
}
