//! The one table that turns GCS answers into `StorageError` kinds: the
//! common HTTP table of csal-http, plus what only GCS says.
//!
//! | GCS answer | kind |
//! |---|---|
//! | 403 `rateLimitExceeded` / `userRateLimitExceeded` | `RateLimited` |
//! | 413 | `Permanent` (an upload request too large, not a full bucket) |
//! | other statuses | the common table (`csal_http::StatusTable`) |
//! | token endpoint refused the key, key unusable | `Auth` |

use csal_core::{ErrorKind, StorageError};
use csal_http::{ErrorAnswer, StatusTable, one_line};
use reqwest::{Response, StatusCode};

pub(crate) use csal_http::transport_error as from_reqwest;

const TABLE: StatusTable = StatusTable::new(&[(413, ErrorKind::Permanent)])
    .with_hints(&[(ErrorKind::Auth, "check the credentials and the account's permissions on the bucket")]);

/// The error of a non-success response (at most 8 KiB of its body read).
pub(crate) async fn from_response(response: Response, what: &str) -> StorageError {
    classify(ErrorAnswer::read(response).await, what)
}

/// GCS errors are `{"error": {"message": ..., "errors": [{"reason": ...}]}}`.
pub(crate) fn classify(answer: ErrorAnswer, what: &str) -> StorageError {
    let json = answer.json();
    let reason = json["error"]["errors"][0]["reason"].as_str();
    let kind = match (answer.status, reason) {
        (StatusCode::FORBIDDEN, Some("rateLimitExceeded" | "userRateLimitExceeded")) => ErrorKind::RateLimited,
        (status, _) => TABLE.kind(status),
    };
    let message = match json["error"]["message"].as_str() {
        Some(m) => Some(m.to_owned()),
        None => {
            let text = String::from_utf8_lossy(&answer.body);
            let text = text.trim();
            (!text.is_empty() && !text.starts_with('<') && json.is_null()).then(|| text.to_owned())
        }
    };
    let mut text = format!("{what}: GCS answered {}", answer.status);
    if let Some(m) = message {
        text.push_str(": ");
        text.push_str(&one_line(&m, 200));
    }
    if let Some(hint) = TABLE.hint(kind) {
        text.push_str(&format!(" ({hint})"));
    }
    answer.error(kind, text)
}

/// A failure to get an access token.
pub(crate) fn from_auth(err: yup_oauth2::Error) -> StorageError {
    use yup_oauth2::Error as E;
    match &err {
        E::AuthError(e) => StorageError::auth(format!(
            "the token endpoint refused the credentials ({}): check the key",
            e.error.as_str()
        ))
        .with_source(err),
        E::HttpError(_) | E::LowLevelError(_) => {
            StorageError::transient("could not reach the OAuth2 token endpoint").with_source(err)
        }
        _ => StorageError::auth("could not get an access token from the configured credentials").with_source(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, RETRY_AFTER};
    use std::time::Duration;

    fn answer(status: u16, after: Option<&str>, body: &'static [u8]) -> ErrorAnswer {
        let mut h = HeaderMap::new();
        if let Some(a) = after {
            h.insert(RETRY_AFTER, a.parse().unwrap());
        }
        ErrorAnswer::new(StatusCode::from_u16(status).unwrap(), h, body)
    }

    #[test]
    fn gcs_reasons_refine_the_common_table() {
        let k = |s: u16, body: &'static [u8]| classify(answer(s, None, body), "x").kind();
        assert_eq!(k(403, b""), ErrorKind::Auth);
        assert_eq!(k(403, br#"{"error":{"errors":[{"reason":"userRateLimitExceeded"}]}}"#), ErrorKind::RateLimited);
        assert_eq!(k(412, b""), ErrorKind::AlreadyExists);
        assert_eq!(k(413, b""), ErrorKind::Permanent);
        assert_eq!(k(503, b""), ErrorKind::Transient);
    }

    #[test]
    fn retry_after_is_kept_for_transient_answers_only() {
        let body = br#"{"error":{"code":503,"message":"Backend Error","errors":[{"reason":"backendError"}]}}"#;
        let e = classify(answer(503, Some("7"), body), "write x");
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.message().contains("Backend Error"));
        let e = classify(answer(404, Some("7"), b""), "read x");
        assert_eq!(e.retry_after(), None);
    }
}
