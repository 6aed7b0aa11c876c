//! ONE table: Microsoft Graph answers to `StorageError` kinds.
//!
//! Graph errors are `{"error": {"code": "...", "message": "..."}}` with the
//! HTTP status carrying most of the meaning ("Microsoft Graph error
//! responses and resource types"); throttling is 429 or 503 with
//! `Retry-After` ("Microsoft Graph throttling guidance").

use csal_core::{ErrorKind, StorageError};
use csal_http::{ErrorAnswer, StatusTable};

/// Graph's differences from the common table of csal-http.
const TABLE: StatusTable =
    StatusTable::new(&[(413, ErrorKind::InvalidInput), (412, ErrorKind::Permanent)]).with_hints(&[
        (ErrorKind::Auth, "Graph refused the token or the app lacks a permission; re-authorise if this persists"),
        (ErrorKind::AlreadyExists, "an item with that name already exists"),
        (ErrorKind::QuotaExceeded, "the drive is full"),
    ]);

pub(crate) fn classify(answer: ErrorAnswer, what: &str) -> StorageError {
    let code = answer.json()["error"]["code"].as_str().unwrap_or_default().to_owned();
    let kind = TABLE.kind(answer.status);
    answer.explain(&TABLE, kind, "Microsoft Graph", &code, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, RETRY_AFTER};
    use std::time::Duration;

    #[test]
    fn graph_errors_map_to_kinds() {
        let k = |s: u16, code: &str| {
            let body = serde_json::json!({"error": {"code": code, "message": "m"}}).to_string();
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, "2".parse().unwrap());
            classify(ErrorAnswer::new(StatusCode::from_u16(s).unwrap(), h, body), "x")
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
