//! ONE table: Box API answers to `StorageError` kinds.
//!
//! Box errors are `{"type": "error", "status": N, "code": "...", "message":
//! "...", "context_info": {...}, "request_id": "..."}` ("Client error"
//! resource); the status carries most of the meaning, the code the rest
//! (`item_name_in_use`, `digest_mismatch`, `rate_limit_exceeded`, ...).
//! Rate limits are 429 with `Retry-After` ("Rate limits" guide).

use std::time::Duration;

use csal_core::{ErrorKind, StorageError};
use serde_json::Value;

/// A non-success answer from Box.
#[derive(Debug)]
pub(crate) struct BoxError {
    pub status: u16,
    pub code: String,
    pub retry_after: Option<Duration>,
    /// `context_info` of the error body (conflicts of a 409).
    pub context: Value,
}

impl std::fmt::Display for BoxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Box answered HTTP {} ({})", self.status, if self.code.is_empty() { "-" } else { &self.code })
    }
}
impl std::error::Error for BoxError {}

impl BoxError {
    pub fn parse(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let code = json["code"].as_str().unwrap_or_default().to_owned();
        BoxError { status, code, retry_after, context: json["context_info"].clone() }
    }

    /// The conflicting item of a 409 (`context_info.conflicts` is a list
    /// on some endpoints and a single object on others).
    pub fn conflict(&self) -> Option<&Value> {
        match &self.context["conflicts"] {
            Value::Array(items) => items.first(),
            Value::Object(_) => Some(&self.context["conflicts"]),
            _ => None,
        }
    }
}

pub(crate) fn classify(err: BoxError, what: &str) -> StorageError {
    let code = err.code.as_str();
    let (kind, msg) = match (err.status, code) {
        (_, "digest_mismatch" | "sha1_mismatch") => (
            ErrorKind::Integrity,
            format!("{what}: Box computed a different SHA-1 than we sent (corrupted in transit)"),
        ),
        (409, _) => (ErrorKind::AlreadyExists, format!("{what}: an item with that name already exists ({code})")),
        (400, "item_name_invalid" | "item_name_too_long") => {
            (ErrorKind::InvalidInput, format!("{what}: Box refused the name ({code})"))
        }
        (400 | 405 | 411 | 413, _) => (ErrorKind::InvalidInput, format!("{what}: Box refused the request ({code})")),
        (401, _) => {
            (ErrorKind::Auth, format!("{what}: Box refused the access token; re-authorise the app if this persists"))
        }
        (403, "storage_limit_exceeded" | "file_size_limit_exceeded") => {
            (ErrorKind::QuotaExceeded, format!("{what}: the Box account or file size limit is reached ({code})"))
        }
        (403, _) => {
            (ErrorKind::Auth, format!("{what}: access denied ({code}); check the app's scopes and folder access"))
        }
        (404, _) => (ErrorKind::NotFound, format!("{what}: no such item")),
        (412, _) => (ErrorKind::Permanent, format!("{what}: the item changed meanwhile (etag mismatch)")),
        (416, _) => (ErrorKind::RangeNotSatisfiable, format!("{what}: range starts past the end of the file")),
        (429, _) => (ErrorKind::RateLimited, format!("{what}: Box is rate limiting ({code})")),
        (507, _) => (ErrorKind::QuotaExceeded, format!("{what}: the Box account is full")),
        (500..=599, _) => (ErrorKind::Transient, format!("{what}: Box server error HTTP {}", err.status)),
        (other, _) => (ErrorKind::Permanent, format!("{what}: unexpected HTTP {other} ({code})")),
    };
    let after = err.retry_after;
    StorageError::new(kind, msg).with_retry_after(after).with_source(err)
}

pub(crate) fn transport(e: reqwest::Error, what: &str) -> StorageError {
    let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Transient };
    StorageError::new(kind, format!("{what}: cannot reach Box")).with_source(e.without_url())
}

pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k(status: u16, code: &str) -> StorageError {
        let body = json!({"type": "error", "status": status, "code": code, "message": "m"}).to_string();
        classify(BoxError::parse(status, Some(Duration::from_secs(3)), body.as_bytes()), "x")
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
        let e = BoxError::parse(409, None, list.to_string().as_bytes());
        assert_eq!(e.conflict().unwrap()["id"], "7");
        let one = json!({"code": "item_name_in_use", "context_info": {"conflicts": {"id": "8", "type": "file"}}});
        let e = BoxError::parse(409, None, one.to_string().as_bytes());
        assert_eq!(e.conflict().unwrap()["id"], "8");
    }
}
