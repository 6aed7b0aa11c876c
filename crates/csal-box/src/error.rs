//! ONE table: Box API answers to `StorageError` kinds.
//!
//! Box errors are `{"type": "error", "status": N, "code": "...", "message":
//! "...", "context_info": {...}, "request_id": "..."}` ("Client error"
//! resource); the status carries most of the meaning, the code the rest
//! (`item_name_in_use`, `digest_mismatch`, `rate_limit_exceeded`, ...).
//! Rate limits are 429 with `Retry-After` ("Rate limits" guide).

use csal_core::{ErrorKind, StorageError};
use csal_http::{ErrorAnswer, StatusTable};
use serde_json::Value;

/// Box's error `code` (`item_name_in_use`, ...), or "".
fn code(answer: &ErrorAnswer) -> String {
    answer.json()["code"].as_str().unwrap_or_default().to_owned()
}

/// The conflicting item of a 409 (`context_info.conflicts` is a list on
/// some endpoints and a single object on others).
pub(crate) fn conflict(answer: &ErrorAnswer) -> Option<Value> {
    match answer.json()["context_info"]["conflicts"].take() {
        Value::Array(mut items) if !items.is_empty() => Some(items.swap_remove(0)),
        one @ Value::Object(_) => Some(one),
        _ => None,
    }
}

/// Box's differences from the common table of csal-http.
const TABLE: StatusTable = StatusTable::new(&[
    (405, ErrorKind::InvalidInput),
    (411, ErrorKind::InvalidInput),
    (413, ErrorKind::InvalidInput),
    // If-Match lost: the item changed meanwhile.
    (412, ErrorKind::Permanent),
])
.with_hints(&[
    (ErrorKind::Auth, "Box refused the token or the app lacks a scope or folder access; re-authorise if this persists"),
    (ErrorKind::Integrity, "Box computed a different SHA-1 than we sent (corrupted in transit)"),
    (ErrorKind::QuotaExceeded, "the Box account or file size limit is reached"),
    (ErrorKind::AlreadyExists, "an item with that name already exists"),
]);

pub(crate) fn classify(answer: ErrorAnswer, what: &str) -> StorageError {
    let code = code(&answer);
    let kind = match (answer.status.as_u16(), code.as_str()) {
        (_, "digest_mismatch" | "sha1_mismatch") => ErrorKind::Integrity,
        (403, "storage_limit_exceeded" | "file_size_limit_exceeded") => ErrorKind::QuotaExceeded,
        _ => TABLE.kind(answer.status),
    };
    answer.explain(&TABLE, kind, "Box", &code, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, RETRY_AFTER};
    use serde_json::json;
    use std::time::Duration;

    fn answer(status: u16, body: Value) -> ErrorAnswer {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        ErrorAnswer::new(StatusCode::from_u16(status).unwrap(), h, body.to_string())
    }

    fn k(status: u16, code: &str) -> StorageError {
        classify(answer(status, json!({"type": "error", "status": status, "code": code, "message": "m"})), "x")
    }

    #[test]
    fn box_errors_map_to_kinds() {
        assert_eq!(k(404, "not_found").kind(), ErrorKind::NotFound);
        assert_eq!(k(409, "item_name_in_use").kind(), ErrorKind::AlreadyExists);
        assert_eq!(k(401, "unauthorized").kind(), ErrorKind::Auth);
        assert_eq!(k(403, "access_denied_insufficient_permissions").kind(), ErrorKind::Auth);
        assert_eq!(k(403, "storage_limit_exceeded").kind(), ErrorKind::QuotaExceeded);
        assert_eq!(k(400, "digest_mismatch").kind(), ErrorKind::Integrity);
        let limited = k(429, "rate_limit_exceeded");
        assert_eq!(limited.kind(), ErrorKind::RateLimited);
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
        assert!(k(503, "unavailable").is_transient());
    }

    #[test]
    fn conflicts_are_read_as_list_or_object() {
        let list = json!({"code": "item_name_in_use", "context_info": {"conflicts": [{"id": "7", "type": "folder"}]}});
        assert_eq!(conflict(&answer(409, list)).unwrap()["id"], "7");
        let one = json!({"code": "item_name_in_use", "context_info": {"conflicts": {"id": "8", "type": "file"}}});
        assert_eq!(conflict(&answer(409, one)).unwrap()["id"], "8");
    }
}
