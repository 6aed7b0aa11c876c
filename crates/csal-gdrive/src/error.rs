//! ONE table: Drive API answers to `StorageError` kinds ("Resolve errors"
//! in the Drive API guide): the HTTP status plus `errors[0].reason`.

use csal_core::{ErrorKind, StorageError};
use csal_http::{ErrorAnswer, StatusTable};

const TABLE: StatusTable = StatusTable::COMMON.with_hints(&[
    (ErrorKind::Auth, "Google refused the token or lacks a permission; re-authorise if this persists"),
    (ErrorKind::RateLimited, "Google Drive rate limit; back off"),
    (ErrorKind::QuotaExceeded, "storage quota exceeded"),
]);

pub(crate) fn classify(answer: ErrorAnswer, what: &str) -> StorageError {
    let json = answer.json();
    let reason = json["error"]["errors"][0]["reason"].as_str().or_else(|| json["error"]["status"].as_str());
    let reason = reason.unwrap_or_default().to_owned();
    let kind = match (answer.status.as_u16(), reason.as_str()) {
        (
            403 | 429,
            "rateLimitExceeded" | "userRateLimitExceeded" | "sharingRateLimitExceeded" | "dailyLimitExceeded",
        ) => ErrorKind::RateLimited,
        (403, "storageQuotaExceeded" | "quotaExceeded") => ErrorKind::QuotaExceeded,
        _ => TABLE.kind(answer.status),
    };
    answer.explain(&TABLE, kind, "Google Drive", &reason, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, reason: &str) -> ErrorKind {
        let body = serde_json::json!({"error": {"code": status, "errors": [{"reason": reason}]}}).to_string();
        let status = reqwest::StatusCode::from_u16(status).unwrap();
        classify(ErrorAnswer::new(status, reqwest::header::HeaderMap::new(), body), "x").kind()
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
