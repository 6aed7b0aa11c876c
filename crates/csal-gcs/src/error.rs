//! The one table that turns GCS answers into `StorageError` kinds.
//!
//! | GCS answer | kind |
//! |---|---|
//! | 401, 403 | `Auth` (403 `rateLimitExceeded`/`userRateLimitExceeded`: `RateLimited`) |
//! | 404 | `NotFound` |
//! | 408, 5xx | `Transient` (+ `Retry-After`) |
//! | 429 | `RateLimited` (+ `Retry-After`) |
//! | 412, 409 | `AlreadyExists` (`ifGenerationMatch=0` lost the race) |
//! | 416 | `RangeNotSatisfiable` |
//! | 400, 411, 413, other 4xx | `Permanent` (`InvalidInput` for 400) |
//! | timeout | `Timeout` |
//! | connect / body / transport errors | `Transient` |
//! | token endpoint refused the key, key unusable | `Auth` |

use std::time::{Duration, SystemTime};

use csal_core::{ErrorKind, StorageError};
use futures::StreamExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

/// Kind for an HTTP status (and the GCS error `reason`, when there is one).
pub(crate) fn kind_for_status(status: StatusCode, reason: Option<&str>) -> ErrorKind {
    match status.as_u16() {
        401 => ErrorKind::Auth,
        403 if matches!(reason, Some("rateLimitExceeded" | "userRateLimitExceeded")) => ErrorKind::RateLimited,
        403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Transient,
        409 | 412 => ErrorKind::AlreadyExists,
        416 => ErrorKind::RangeNotSatisfiable,
        429 => ErrorKind::RateLimited,
        400 => ErrorKind::InvalidInput,
        500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Permanent,
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// The error of a non-success response; reads at most 8 KiB of its body.
pub(crate) async fn from_response(response: Response, what: &str) -> StorageError {
    let status = response.status();
    let after = retry_after(response.headers());
    let body = read_limited(response, 8 * 1024).await;
    from_parts(status, after, &body, what)
}

pub(crate) fn from_parts(status: StatusCode, after: Option<Duration>, body: &[u8], what: &str) -> StorageError {
    let (message, reason) = parse_error_body(body);
    let kind = kind_for_status(status, reason.as_deref());
    let mut text = format!("{what}: GCS answered {status}");
    if let Some(m) = message {
        text.push_str(": ");
        text.push_str(&one_line(&m, 200));
    }
    if kind == ErrorKind::Auth {
        text.push_str(" (check the credentials and the account's permissions on the bucket)");
    }
    let retryable = matches!(kind, ErrorKind::Transient | ErrorKind::RateLimited);
    StorageError::new(kind, text).with_retry_after(if retryable { after } else { None })
}

/// A transport-level failure (no HTTP answer, or the body broke off).
pub(crate) fn from_reqwest(err: reqwest::Error, what: &str) -> StorageError {
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_builder() {
        ErrorKind::InvalidInput
    } else {
        ErrorKind::Transient
    };
    let how = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the transfer broke off"
    } else {
        "the request failed"
    };
    // reqwest's Display can include the URL (no secrets in ours: tokens go in
    // headers), kept as the source only.
    StorageError::new(kind, format!("{what}: {how}")).with_source(err.without_url())
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

fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return ((!text.is_empty() && !text.starts_with('<')).then(|| text.to_owned()), None);
    };
    let err = &v["error"];
    let message = err["message"].as_str().map(str::to_owned);
    let reason = err["errors"][0]["reason"].as_str().map(str::to_owned);
    (message, reason)
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= max { flat } else { flat.chars().take(max).collect::<String>() + "..." }
}

pub(crate) async fn read_limited(response: Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let k = |s: u16| kind_for_status(StatusCode::from_u16(s).unwrap(), None);
        assert_eq!(k(401), ErrorKind::Auth);
        assert_eq!(k(403), ErrorKind::Auth);
        assert_eq!(k(404), ErrorKind::NotFound);
        assert_eq!(k(408), ErrorKind::Transient);
        assert_eq!(k(412), ErrorKind::AlreadyExists);
        assert_eq!(k(416), ErrorKind::RangeNotSatisfiable);
        assert_eq!(k(429), ErrorKind::RateLimited);
        assert_eq!(k(500), ErrorKind::Transient);
        assert_eq!(k(503), ErrorKind::Transient);
        assert_eq!(k(411), ErrorKind::Permanent);
        assert_eq!(kind_for_status(StatusCode::FORBIDDEN, Some("userRateLimitExceeded")), ErrorKind::RateLimited);
    }

    #[test]
    fn retry_after_is_kept_for_transient_answers_only() {
        let body = br#"{"error":{"code":503,"message":"Backend Error","errors":[{"reason":"backendError"}]}}"#;
        let e = from_parts(StatusCode::SERVICE_UNAVAILABLE, Some(Duration::from_secs(7)), body, "write x");
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.message().contains("Backend Error"));
        let e = from_parts(StatusCode::NOT_FOUND, Some(Duration::from_secs(7)), b"", "read x");
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "12".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        h.insert(RETRY_AFTER, later.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(25), "{d:?}");
    }
}
