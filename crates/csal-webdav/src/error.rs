//! The one table from HTTP / transport failures to `StorageError` kinds.

use std::time::{Duration, SystemTime};

use csal_core::{ErrorKind, StorageError};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// Classify an HTTP status of a WebDAV response. `what` says what failed
/// (`PUT a/b.mp4`), never with credentials.
pub(crate) fn status_error(status: StatusCode, headers: &HeaderMap, what: &str) -> StorageError {
    let code = status.as_u16();
    let kind = match code {
        401 | 403 => ErrorKind::Auth,
        404 | 410 => ErrorKind::NotFound,
        412 => ErrorKind::AlreadyExists,
        416 => ErrorKind::RangeNotSatisfiable,
        429 => ErrorKind::RateLimited,
        408 | 423 | 500 | 502 | 503 | 504 => ErrorKind::Transient,
        507 => ErrorKind::QuotaExceeded,
        413 => ErrorKind::QuotaExceeded,
        _ => ErrorKind::Permanent,
    };
    let hint = match kind {
        ErrorKind::Auth => ": check username, password and auth method",
        ErrorKind::QuotaExceeded => ": the server is out of space or over quota",
        _ => "",
    };
    let reason = status.canonical_reason().unwrap_or("");
    StorageError::new(kind, format!("{what}: HTTP {code} {reason}{hint}")).with_retry_after(retry_after(headers))
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// Classify a transport failure (connect, timeout, broken body).
pub(crate) fn transport_error(err: reqwest::Error, what: &str) -> StorageError {
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_builder() {
        ErrorKind::InvalidConfig
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
    StorageError::new(kind, format!("{what}: {detail}")).with_source(err.without_url())
}

/// Classify an error of the `reqwest_dav` layer (request building, auth).
pub(crate) fn dav_error(err: reqwest_dav::Error, what: &str) -> StorageError {
    use reqwest_dav::{DecodeError, Error};
    match err {
        Error::Reqwest(e) => transport_error(e, what),
        Error::Decode(DecodeError::StatusMismatched(s)) if s.response_code == 401 || s.response_code == 403 => {
            StorageError::auth(format!("{what}: HTTP {} while negotiating Digest auth", s.response_code))
        }
        Error::Decode(DecodeError::StatusMismatched(s)) => StorageError::auth(format!(
            "{what}: server answered HTTP {} instead of a Digest challenge: is auth 'digest' right?",
            s.response_code
        )),
        Error::Decode(DecodeError::NoAuthHeaderInResponse) | Error::Decode(DecodeError::DigestAuth(_)) => {
            StorageError::auth(format!("{what}: the server's Digest challenge is missing or malformed"))
        }
        Error::ReqwestDecode(_) => StorageError::invalid_input(format!("{what}: cannot build the request URL")),
        other => StorageError::permanent(format!("{what}: WebDAV client error")).with_source(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    #[test]
    fn status_table_follows_the_contract() {
        let h = HeaderMap::new();
        let kind = |c: u16| status_error(StatusCode::from_u16(c).unwrap(), &h, "x").kind();
        assert_eq!(kind(401), ErrorKind::Auth);
        assert_eq!(kind(403), ErrorKind::Auth);
        assert_eq!(kind(404), ErrorKind::NotFound);
        assert_eq!(kind(412), ErrorKind::AlreadyExists);
        assert_eq!(kind(423), ErrorKind::Transient);
        assert_eq!(kind(429), ErrorKind::RateLimited);
        assert_eq!(kind(503), ErrorKind::Transient);
        assert_eq!(kind(507), ErrorKind::QuotaExceeded);
        assert_eq!(kind(400), ErrorKind::Permanent);
    }

    #[test]
    fn retry_after_seconds_are_kept() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let e = status_error(StatusCode::SERVICE_UNAVAILABLE, &h, "PUT a");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.is_transient());
    }
}
