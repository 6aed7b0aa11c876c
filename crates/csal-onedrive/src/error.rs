//! ONE table: Microsoft Graph answers to `StorageError` kinds.
//!
//! Graph errors are `{"error": {"code": "...", "message": "..."}}` with the
//! HTTP status carrying most of the meaning ("Microsoft Graph error
//! responses and resource types"); throttling is 429 or 503 with
//! `Retry-After` ("Microsoft Graph throttling guidance").

use std::time::Duration;

use csal_core::{ErrorKind, StorageError};

/// A non-success answer from Graph.
#[derive(Debug)]
pub(crate) struct GraphError {
    pub status: u16,
    pub code: String,
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Microsoft Graph answered HTTP {} ({})", self.status, self.code)
    }
}
impl std::error::Error for GraphError {}

impl GraphError {
    pub fn parse(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        let code = json["error"]["code"].as_str().unwrap_or_default().to_owned();
        GraphError { status, code, retry_after }
    }
}

pub(crate) fn classify(err: GraphError, what: &str) -> StorageError {
    let (kind, msg) = match err.status {
        400 | 413 => (ErrorKind::InvalidInput, format!("{what}: Graph refused the request ({})", err.code)),
        401 => {
            (ErrorKind::Auth, format!("{what}: Graph refused the access token; re-authorise the app if this persists"))
        }
        403 => (ErrorKind::Auth, format!("{what}: access denied ({}); check the app's permissions", err.code)),
        404 => (ErrorKind::NotFound, format!("{what}: no such item")),
        409 => (ErrorKind::AlreadyExists, format!("{what}: an item with that name already exists")),
        412 => (ErrorKind::Permanent, format!("{what}: the item changed meanwhile (eTag mismatch)")),
        416 => (ErrorKind::RangeNotSatisfiable, format!("{what}: range starts past the end of the file")),
        429 => (ErrorKind::RateLimited, format!("{what}: Graph is throttling ({})", err.code)),
        503 => (ErrorKind::Transient, format!("{what}: Graph is unavailable or throttling ({})", err.code)),
        507 => (ErrorKind::QuotaExceeded, format!("{what}: the drive is full")),
        500..=599 => (ErrorKind::Transient, format!("{what}: Graph server error HTTP {}", err.status)),
        other => (ErrorKind::Permanent, format!("{what}: unexpected HTTP {other}")),
    };
    let after = err.retry_after;
    StorageError::new(kind, msg).with_retry_after(after).with_source(err)
}

pub(crate) fn transport(e: reqwest::Error, what: &str) -> StorageError {
    let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Transient };
    StorageError::new(kind, format!("{what}: cannot reach Microsoft Graph")).with_source(e.without_url())
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

    #[test]
    fn graph_errors_map_to_kinds() {
        let k = |s: u16, code: &str| {
            let body = serde_json::json!({"error": {"code": code, "message": "m"}}).to_string();
            classify(GraphError::parse(s, Some(Duration::from_secs(2)), body.as_bytes()), "x")
        };
        assert_eq!(k(404, "itemNotFound").kind(), ErrorKind::NotFound);
        assert_eq!(k(409, "nameAlreadyExists").kind(), ErrorKind::AlreadyExists);
        assert_eq!(k(401, "InvalidAuthenticationToken").kind(), ErrorKind::Auth);
        assert_eq!(k(429, "activityLimitReached").kind(), ErrorKind::RateLimited);
        let unavailable = k(503, "serviceNotAvailable");
        assert!(unavailable.is_transient());
        assert_eq!(unavailable.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(k(507, "insufficientStorage").kind(), ErrorKind::QuotaExceeded);
    }
}
