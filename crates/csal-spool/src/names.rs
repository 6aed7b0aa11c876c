//! Camera ids and segment names as they arrive in URLs.
//!
//! Both become parts of storage paths (`camera/2026-12-04/name_ID.ts`) and
//! of playlist URIs, so they are held to one safe alphabet: ASCII letters,
//! digits, `_`, `-` and `.`, not starting with `.`, at most 128 bytes for a
//! camera and 200 for a name. Anything else (`..`, `/`, NUL, spaces,
//! percent-escapes, 10 kB names) is refused with `InvalidInput` before any
//! byte of the body is read.

use csal_core::{Result, StorageError};

/// Longest camera id.
pub const MAX_CAMERA_ID: usize = 128;
/// Longest segment name.
pub const MAX_SEGMENT_NAME: usize = 200;

fn check(what: &str, value: &str, max: usize) -> Result<()> {
    let shown: String = value.chars().take(60).flat_map(char::escape_default).collect();
    if value.is_empty() || value.len() > max {
        return Err(StorageError::invalid_input(format!("{what} must be 1 to {max} characters (got {})", value.len())));
    }
    if value.starts_with('.') {
        return Err(StorageError::invalid_input(format!("{what} \"{shown}\" must not start with '.'")));
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
        return Err(StorageError::invalid_input(format!(
            "{what} \"{shown}\" may only contain ASCII letters, digits, '_', '-' and '.'"
        )));
    }
    Ok(())
}

/// Refuse a camera id that is not 1-128 of `[A-Za-z0-9_.-]` (no leading `.`).
pub fn check_camera_id(camera_id: &str) -> Result<()> {
    check("camera id", camera_id, MAX_CAMERA_ID)
}

/// Refuse a segment name that is not 1-200 of `[A-Za-z0-9_.-]` (no leading `.`).
pub fn check_segment_name(name: &str) -> Result<()> {
    check("segment name", name, MAX_SEGMENT_NAME)?;
    if name.ends_with(".m3u8") {
        return Err(StorageError::invalid_input(
            "a playlist is not a segment: PUT it to /v1/cameras/{camera}/{name}.m3u8",
        ));
    }
    Ok(())
}

/// The content type of a segment from its name, when the recorder sent none.
pub fn content_type_for(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "mp4" | "m4v" => "video/mp4",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "aac" => "audio/aac",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_pass_and_hostile_ones_are_refused() {
        for ok in ["cam1", "front-door_2.hd", "20261204T101500.ts", &"c".repeat(128)] {
            check_camera_id(ok).unwrap();
        }
        for ok in ["seg00001.ts", "init.mp4", "a-b_c.m4s", &"s".repeat(200)] {
            check_segment_name(ok).unwrap();
        }
        let hostile = ["", "..", ".hidden", "../etc", "a/b", "a\\b", "a\0b", "a b", "caf\u{e9}", "%2e%2e", "a\nb"];
        for bad in hostile {
            assert_eq!(check_camera_id(bad).unwrap_err().kind(), csal_core::ErrorKind::InvalidInput, "{bad:?}");
            assert_eq!(check_segment_name(bad).unwrap_err().kind(), csal_core::ErrorKind::InvalidInput, "{bad:?}");
        }
        let huge = "x".repeat(10_000);
        assert!(check_camera_id(&huge).unwrap_err().message().len() < 200, "the error does not echo 10 kB");
        assert!(check_segment_name(&huge).is_err());
        assert!(check_segment_name("live.m3u8").is_err());
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type_for("a.ts"), "video/mp2t");
        assert_eq!(content_type_for("a.M4S"), "video/iso.segment");
        assert_eq!(content_type_for("noext"), "application/octet-stream");
    }
}
