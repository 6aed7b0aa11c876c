//! The one table from Swift / identity HTTP answers and transport failures
//! to `StorageError` kinds.

use std::time::{Duration, SystemTime};

use csal_core::{ErrorKind, StorageError};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

pub(crate) fn status_error(status: StatusCode, headers: &HeaderMap, what: &str) -> StorageError {
    let code = status.as_u16();
    let kind = match code {
        401 | 403 => ErrorKind::Auth,
        404 | 410 => ErrorKind::NotFound,
        412 => ErrorKind::AlreadyExists,
        416 => ErrorKind::RangeNotSatisfiable,
        // 413: object too large or account/container quota used up.
        413 | 507 => ErrorKind::QuotaExceeded,
        // 422: the body did not match its ETag (corrupted in transit).
        422 => ErrorKind::Integrity,
        // 498: Swift's ratelimit middleware.
        429 | 498 => ErrorKind::RateLimited,
        408 | 409 | 499 | 500 | 502 | 503 | 504 => ErrorKind::Transient,
        _ => ErrorKind::Permanent,
    };
    let hint = match kind {
        ErrorKind::Auth => ": check the credentials, project and container permissions",
        ErrorKind::QuotaExceeded => ": quota used up or object too large",
        _ => "",
    };
    let reason = status.canonical_reason().unwrap_or("");
    StorageError::new(kind, format!("{what}: HTTP {code} {reason}{hint}")).with_retry_after(retry_after(headers))
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

pub(crate) fn transport_error(err: reqwest::Error, what: &str) -> StorageError {
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_builder() {
        ErrorKind::InvalidInput
    } else {
        ErrorKind::Transient
    };
    let detail = if err.is_connect() {
        "cannot connect to the server"
    } else if err.is_timeout() {
        "no answer in time"
    } else if err.is_body() || err.is_decode() {
        "the transfer broke off"
    } else {
        "request failed"
    };
    // without_url: temp URLs and tokens never reach error text.
    StorageError::new(kind, format!("{what}: {detail}")).with_source(err.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_follows_the_contract() {
        let h = HeaderMap::new();
        let kind = |c: u16| status_error(StatusCode::from_u16(c).unwrap(), &h, "x").kind();
        assert_eq!(kind(401), ErrorKind::Auth);
        assert_eq!(kind(403), ErrorKind::Auth);
        assert_eq!(kind(404), ErrorKind::NotFound);
        assert_eq!(kind(412), ErrorKind::AlreadyExists);
        assert_eq!(kind(413), ErrorKind::QuotaExceeded);
        assert_eq!(kind(422), ErrorKind::Integrity);
        assert_eq!(kind(498), ErrorKind::RateLimited);
        assert_eq!(kind(503), ErrorKind::Transient);
        assert_eq!(kind(400), ErrorKind::Permanent);
    }
}
