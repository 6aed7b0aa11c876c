//! Object ids and key hints for path-like stores.
//!
//! Object ids are opaque to callers, but most providers (local disk, S3 keys,
//! WebDAV paths) derive them from a relative path. These helpers make that
//! path safe once, for every provider:
//! - [`check_object_id`] refuses anything that could escape the store's root
//!   or confuse a server (`..`, absolute paths, NUL, backslashes, control
//!   characters, empty segments). The router's layers call it on every id
//!   a caller passes, once; providers trust the ids they get;
//! - [`object_id_from_hint`] turns a caller's key hint into a fresh, unique,
//!   safe id: `camera5/seg.mp4` becomes `camera5/seg-01JD...X.mp4`.

use crate::error::{Result, StorageError};

/// Longest object id we accept (S3's key limit is 1024 bytes).
pub const MAX_OBJECT_ID_LEN: usize = 1024;
/// Longest sanitised key hint we keep (room for the unique suffix).
const MAX_HINT_LEN: usize = 900;
/// Longest single path segment (most filesystems allow 255 bytes).
const MAX_SEGMENT_LEN: usize = 200;

/// Refuse object ids that are not a clean relative path. It runs on every
/// operation (twice when a provider checks too), so the usual id is checked
/// in one vectorised pass.
pub fn check_object_id(id: &str) -> Result<()> {
    let bad = |why: &str| Err(StorageError::invalid_input(format!("object id {:?} {why}", shorten(id))));
    if id.is_empty() {
        return bad("is empty");
    }
    if id.len() > MAX_OBJECT_ID_LEN {
        return bad("is too long");
    }
    if id.starts_with('/') {
        return bad("is an absolute path");
    }
    // One pass without early exit (the compiler vectorises it): anything
    // that needs a closer look? Non-ASCII is looked at char by char, since
    // Unicode has control characters outside ASCII too (C1, U+0080-U+009F).
    let (mut unusual, mut slash) = (false, false);
    for &b in id.as_bytes() {
        unusual |= !(0x20..0x7f).contains(&b) || b == b'\\';
        slash |= b == b'/';
    }
    if unusual && id.chars().any(|c| c == '\\' || c.is_control()) {
        return bad("contains NUL, a backslash or a control character");
    }
    if slash || id.starts_with('.') || id.len() > MAX_SEGMENT_LEN + 40 {
        for segment in id.split('/') {
            check_segment(segment.as_bytes()).or_else(bad)?;
        }
    }
    Ok(())
}

/// Refuse a listing's id prefix (`path/prefix`) that could leave the
/// store's root: every complete segment must pass [`check_object_id`]'s
/// rules; the last, partial one (`a-` of `cam/a-`) only must not hold NUL,
/// backslashes or control characters. "" (everything) is fine.
pub fn check_id_prefix(prefix: &str) -> Result<()> {
    let bad = |why: &str| Err(StorageError::invalid_input(format!("list prefix {:?} {why}", shorten(prefix))));
    if prefix.len() > MAX_OBJECT_ID_LEN {
        return bad("is too long");
    }
    if prefix.chars().any(|c| c == '\0' || c == '\\' || c.is_control()) {
        return bad("contains NUL, a backslash or a control character");
    }
    match prefix.rsplit_once('/') {
        Some((folders, _partial)) => check_object_id(folders).map_err(|_| {
            StorageError::invalid_input(format!("list prefix {:?} is not a clean relative path", shorten(prefix)))
        }),
        None => Ok(()),
    }
}

/// One path segment of an object id: not empty, not `.` or `..`, not too long.
fn check_segment(segment: &[u8]) -> std::result::Result<(), &'static str> {
    match segment {
        b"" => Err("has an empty path segment"),
        b"." | b".." => Err("has a '.' or '..' segment"),
        s if s.len() > MAX_SEGMENT_LEN + 40 => Err("has a path segment that is too long"),
        _ => Ok(()),
    }
}

/// Make a safe, unique object id from a key hint.
///
/// Slashes in the hint become folders; `.`/`..`/empty segments are dropped;
/// characters outside letters, digits and `-_.=+@,` become `_`; a ULID
/// (time-sortable, 80 random bits) is added before the extension.
pub fn object_id_from_hint(hint: &str) -> String {
    let unique = ulid::Ulid::new().to_string();
    let sanitized = sanitize_hint(hint);
    let (dir, file) = match sanitized.rsplit_once('/') {
        Some((d, f)) => (Some(d), f),
        None => (None, sanitized.as_str()),
    };
    let (stem, ext) = split_extension(file);
    let name = match (stem.is_empty(), ext) {
        (true, Some(ext)) => format!("{unique}.{ext}"),
        (true, None) => unique,
        (false, Some(ext)) => format!("{stem}-{unique}.{ext}"),
        (false, None) => format!("{stem}-{unique}"),
    };
    let id = match dir {
        Some(d) if !d.is_empty() => format!("{d}/{name}"),
        _ => name,
    };
    // Safe by construction: providers use it without checking again.
    debug_assert!(check_object_id(&id).is_ok(), "object_id_from_hint made an unsafe id");
    id
}

/// The sanitised form of a key hint (no uniqueness suffix).
pub fn sanitize_hint(hint: &str) -> String {
    let mut segments: Vec<String> = Vec::new();
    for raw in hint.split(['/', '\\']) {
        let seg: String =
            raw.trim().chars().map(|c| if c.is_alphanumeric() || "-_.=+@,".contains(c) { c } else { '_' }).collect();
        let seg = seg.trim_start_matches('.').to_owned();
        if seg.is_empty() {
            continue;
        }
        segments.push(truncate_chars(&seg, MAX_SEGMENT_LEN));
    }
    let joined = segments.join("/");
    truncate_chars(&joined, MAX_HINT_LEN).trim_end_matches('/').to_owned()
}

fn split_extension(file: &str) -> (&str, Option<&str>) {
    match file.rsplit_once('.') {
        Some((stem, ext)) if !ext.is_empty() && ext.len() <= 10 && ext.chars().all(|c| c.is_ascii_alphanumeric()) => {
            (stem, Some(ext))
        }
        _ => (file, None),
    }
}

fn truncate_chars(s: &str, max_bytes: usize) -> String {
    if s.len() <= max_bytes {
        return s.to_owned();
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn shorten(id: &str) -> String {
    truncate_chars(id, 80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_are_refused() {
        let long_segment = format!("a/{}", "x".repeat(300));
        for id in [
            "",
            "../x",
            "/etc/passwd",
            "a/../../b",
            "a\0b",
            "a\\b",
            "a//b",
            "./a",
            "a/.",
            "a\nb",
            "a/",
            "a\u{7f}b",
            "a\u{85}b",
            "ü/..",
            &long_segment,
        ] {
            let e = check_object_id(id).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{id:?}");
        }
        check_object_id("camera5/2025/seg-01.mp4").unwrap();
        check_object_id("ünïcode dir/ファイル").unwrap();
    }

    #[test]
    fn hostile_list_prefixes_are_refused() {
        for prefix in ["../../etc/", "../x", "/etc/", "a/../../b/", "a//b", "./a", "a/./", "a\0b", "a\\b", "/x", "a\nb"]
        {
            let e = check_id_prefix(prefix).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{prefix:?}");
        }
        for prefix in ["", "a-", "cam/", "cam/2025-01", "cam/..partial", "..x", "ファイル/"] {
            check_id_prefix(prefix).unwrap_or_else(|e| panic!("{prefix:?}: {e}"));
        }
    }

    #[test]
    fn same_hint_twice_gives_distinct_safe_ids() {
        let a = object_id_from_hint("camera5/seg.mp4");
        let b = object_id_from_hint("camera5/seg.mp4");
        assert_ne!(a, b);
        assert!(a.starts_with("camera5/seg-") && a.ends_with(".mp4"), "{a}");
        check_object_id(&a).unwrap();
    }

    #[test]
    fn hostile_hints_become_safe_ids() {
        for hint in ["../../etc/passwd", "/abs/path", "a\0b", "..", "", "   ", "a\\..\\b", "ü ber/ファイル名.txt"]
        {
            let id = object_id_from_hint(hint);
            check_object_id(&id).unwrap_or_else(|e| panic!("{hint:?} -> {id:?}: {e}"));
            assert!(!id.contains(".."), "{id}");
        }
        assert_eq!(sanitize_hint("../../etc/passwd"), "etc/passwd");
        assert_eq!(sanitize_hint("ü ber/x"), "ü_ber/x");
    }
}
