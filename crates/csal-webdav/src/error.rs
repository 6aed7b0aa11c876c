//! The one table from HTTP / transport failures to `StorageError` kinds.

use csal_core::{ErrorKind, StorageError};
use csal_http::StatusTable;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

pub(crate) use csal_http::transport_error;

/// WebDAV's differences from the common table: a malformed request and a
/// 409 Conflict (a missing parent collection) are not worth retrying and
/// not "already exists".
const TABLE: StatusTable = StatusTable::new(&[(400, ErrorKind::Permanent), (409, ErrorKind::Permanent)]).with_hints(&[
    (ErrorKind::Auth, "check username, password and auth method"),
    (ErrorKind::QuotaExceeded, "the server is out of space or over quota"),
]);

/// Classify an HTTP status of a WebDAV response. `what` says what failed
/// (`PUT a/b.mp4`), never with credentials.
pub(crate) fn status_error(status: StatusCode, headers: &HeaderMap, what: &str) -> StorageError {
    TABLE.error(status, headers, what)
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
    use std::time::Duration;

    /// WebDAV's own statuses (the common ones are csal-http's tests).
    #[test]
    fn webdav_statuses_refine_the_common_table() {
        let e = |c: u16| status_error(StatusCode::from_u16(c).unwrap(), &HeaderMap::new(), "PUT x");
        assert_eq!((e(400).kind(), e(409).kind()), (ErrorKind::Permanent, ErrorKind::Permanent));
        assert!(e(507).message().ends_with("out of space or over quota"), "{}", e(507));
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
