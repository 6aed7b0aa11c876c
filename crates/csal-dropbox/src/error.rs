//! ONE table: Dropbox answers to `StorageError` kinds.
//!
//! Dropbox reports endpoint errors as HTTP 409 with `{"error_summary":
//! "path/not_found/..", "error": {".tag": ...}}`; the summary is the tag path,
//! so it is what we match on. See the "Errors" section of
//! <https://www.dropbox.com/developers/documentation/http/documentation>.

use std::time::Duration;

use csal_core::{ErrorKind, StorageError};

/// A non-success answer from Dropbox.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    /// `error_summary` of a JSON error body, or the start of a text body.
    pub summary: String,
    pub body: serde_json::Value,
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dropbox answered HTTP {}: {}", self.status, self.summary)
    }
}
impl std::error::Error for ApiError {}

impl ApiError {
    pub fn parse(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        let summary = match json.get("error_summary").and_then(|v| v.as_str()) {
            Some(s) => s.to_owned(),
            None => json
                .get("error")
                .and_then(|e| e.get(".tag"))
                .and_then(|t| t.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_owned()),
        };
        ApiError { status, summary, body: json, retry_after }
    }

    /// Whether the summary has this tag path (`path/not_found`).
    pub fn is(&self, tags: &str) -> bool {
        self.summary.starts_with(tags)
    }

    /// The 401 tags that a fresh access token cures.
    pub fn token_expired(&self) -> bool {
        self.status == 401 && (self.is("expired_access_token") || self.is("invalid_access_token"))
    }
}

/// Classify a Dropbox answer; `what` says which call on which object.
pub(crate) fn classify(err: ApiError, what: &str) -> StorageError {
    let s = err.summary.as_str();
    let has = |tag: &str| s.split('/').any(|t| t == tag);
    let (kind, msg): (ErrorKind, String) = match err.status {
        400 => (ErrorKind::InvalidInput, format!("{what}: Dropbox refused the request as malformed")),
        401 => (
            ErrorKind::Auth,
            format!("{what}: Dropbox refused the access token ({}); re-authorise the app if this persists", tag0(s)),
        ),
        403 => (ErrorKind::Auth, format!("{what}: the app lacks permission or a scope ({})", tag0(s))),
        416 => (ErrorKind::RangeNotSatisfiable, format!("{what}: range starts past the end of the file")),
        429 => (ErrorKind::RateLimited, format!("{what}: Dropbox is rate limiting ({})", tag0(s))),
        409 if has("not_found") || has("not_file") => (ErrorKind::NotFound, format!("{what}: no such file")),
        409 if has("conflict") => (ErrorKind::AlreadyExists, format!("{what}: a file or folder already exists there")),
        409 if has("insufficient_space") => (ErrorKind::QuotaExceeded, format!("{what}: the Dropbox is full")),
        409 if has("no_write_permission") || has("team_folder") => {
            (ErrorKind::Auth, format!("{what}: no write permission there"))
        }
        409 if has("too_many_write_operations") => {
            (ErrorKind::RateLimited, format!("{what}: too many write operations"))
        }
        409 if has("malformed_path") || has("disallowed_name") => {
            (ErrorKind::InvalidInput, format!("{what}: Dropbox refused the path ({s})"))
        }
        409 if has("incorrect_offset") || has("closed") => {
            (ErrorKind::Transient, format!("{what}: upload session out of step ({})", tag0(s)))
        }
        409 => (ErrorKind::Permanent, format!("{what}: Dropbox refused ({s})")),
        500..=599 => (ErrorKind::Transient, format!("{what}: Dropbox server error HTTP {}", err.status)),
        other => (ErrorKind::Permanent, format!("{what}: unexpected HTTP {other}")),
    };
    let retry_after = err.retry_after.or_else(|| {
        err.body.get("error").and_then(|e| e.get("retry_after")).and_then(|v| v.as_u64()).map(Duration::from_secs)
    });
    StorageError::new(kind, msg).with_retry_after(retry_after).with_source(err)
}

fn tag0(summary: &str) -> &str {
    summary.split('/').next().unwrap_or(summary)
}

/// A transport failure (no answer).
pub(crate) fn transport(e: reqwest::Error, what: &str) -> StorageError {
    let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Transient };
    StorageError::new(kind, format!("{what}: cannot reach Dropbox")).with_source(e.without_url())
}

/// Retry-After in seconds (Dropbox sends seconds).
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

    fn kind(status: u16, body: &str) -> ErrorKind {
        classify(ApiError::parse(status, None, body.as_bytes()), "x").kind()
    }

    #[test]
    fn dropbox_errors_map_to_kinds() {
        assert_eq!(kind(409, r#"{"error_summary":"path/not_found/..","error":{}}"#), ErrorKind::NotFound);
        assert_eq!(kind(409, r#"{"error_summary":"path_lookup/not_found/","error":{}}"#), ErrorKind::NotFound);
        assert_eq!(kind(409, r#"{"error_summary":"path/conflict/file/..","error":{}}"#), ErrorKind::AlreadyExists);
        assert_eq!(kind(409, r#"{"error_summary":"path/insufficient_space/.","error":{}}"#), ErrorKind::QuotaExceeded);
        assert_eq!(kind(401, r#"{"error_summary":"invalid_access_token/","error":{}}"#), ErrorKind::Auth);
        assert_eq!(kind(400, "Error in call to API function"), ErrorKind::InvalidInput);
        assert_eq!(kind(503, ""), ErrorKind::Transient);
        assert_eq!(kind(416, ""), ErrorKind::RangeNotSatisfiable);
    }

    #[test]
    fn rate_limit_carries_retry_after_from_the_body() {
        let body = r#"{"error_summary":"too_many_requests/..","error":{"reason":{".tag":"too_many_requests"},"retry_after":7}}"#;
        let e = classify(ApiError::parse(429, None, body.as_bytes()), "x");
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    }
}
