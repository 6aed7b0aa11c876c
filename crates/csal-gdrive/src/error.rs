//! ONE table: Drive API answers to `StorageError` kinds ("Resolve errors"
//! in the Drive API guide): the HTTP status plus `errors[0].reason`.

use std::time::Duration;

use csal_core::{ErrorKind, StorageError};

#[derive(Debug)]
pub(crate) struct DriveError {
    pub status: u16,
    pub reason: String,
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for DriveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Google Drive answered HTTP {} ({})", self.status, self.reason)
    }
}
impl std::error::Error for DriveError {}

impl DriveError {
    pub fn parse(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let json: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        let reason = json["error"]["errors"][0]["reason"]
            .as_str()
            .or_else(|| json["error"]["status"].as_str())
            .unwrap_or_default()
            .to_owned();
        DriveError { status, reason, retry_after }
    }
}

pub(crate) fn classify(err: DriveError, what: &str) -> StorageError {
    let r = err.reason.as_str();
    let (kind, msg) = match (err.status, r) {
        (403 | 429, "rateLimitExceeded" | "userRateLimitExceeded" | "sharingRateLimitExceeded") | (429, _) => {
            (ErrorKind::RateLimited, format!("{what}: Google Drive rate limit ({r}); back off"))
        }
        (403, "storageQuotaExceeded" | "quotaExceeded") => {
            (ErrorKind::QuotaExceeded, format!("{what}: storage quota exceeded"))
        }
        (403, "dailyLimitExceeded") => (ErrorKind::RateLimited, format!("{what}: daily API limit reached")),
        (401, _) => {
            (ErrorKind::Auth, format!("{what}: Google refused the access token; re-authorise the app if this persists"))
        }
        (403, _) => (ErrorKind::Auth, format!("{what}: permission denied ({r})")),
        (400, _) => (ErrorKind::InvalidInput, format!("{what}: Google Drive refused the request ({r})")),
        (404, _) => (ErrorKind::NotFound, format!("{what}: no such file")),
        (416, _) => (ErrorKind::RangeNotSatisfiable, format!("{what}: range starts past the end of the file")),
        (500..=599, _) => (ErrorKind::Transient, format!("{what}: Google Drive server error HTTP {}", err.status)),
        (other, _) => (ErrorKind::Permanent, format!("{what}: unexpected HTTP {other}")),
    };
    let after = err.retry_after;
    StorageError::new(kind, msg).with_retry_after(after).with_source(err)
}

pub(crate) fn transport(e: reqwest::Error, what: &str) -> StorageError {
    let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Transient };
    StorageError::new(kind, format!("{what}: cannot reach Google Drive")).with_source(e.without_url())
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

    fn kind(status: u16, reason: &str) -> ErrorKind {
        let body = serde_json::json!({"error": {"code": status, "errors": [{"reason": reason}]}}).to_string();
        classify(DriveError::parse(status, None, body.as_bytes()), "x").kind()
    }

    #[test]
    fn drive_errors_map_to_kinds() {
        assert_eq!(kind(403, "userRateLimitExceeded"), ErrorKind::RateLimited);
        assert_eq!(kind(403, "rateLimitExceeded"), ErrorKind::RateLimited);
        assert_eq!(kind(403, "storageQuotaExceeded"), ErrorKind::QuotaExceeded);
        assert_eq!(kind(403, "insufficientFilePermissions"), ErrorKind::Auth);
        assert_eq!(kind(404, "notFound"), ErrorKind::NotFound);
        assert_eq!(kind(401, "authError"), ErrorKind::Auth);
        assert_eq!(kind(503, "backendError"), ErrorKind::Transient);
        assert_eq!(kind(416, ""), ErrorKind::RangeNotSatisfiable);
    }
}
