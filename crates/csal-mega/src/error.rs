//! ONE table: MEGA API error codes (negative numbers, see the MEGA SDK's
//! public `types.h` error list / https://mega.io/developers) -> StorageError.

use std::time::Duration;

use csal_core::{ErrorKind, StorageError};

pub(crate) fn kind_of_code(code: i64) -> ErrorKind {
    match code {
        -1 => ErrorKind::Transient,               // EINTERNAL
        -2 => ErrorKind::InvalidInput,            // EARGS
        -3 => ErrorKind::Transient,               // EAGAIN: retry
        -4 | -6 => ErrorKind::RateLimited,        // ERATELIMIT, ETOOMANY
        -5 => ErrorKind::Transient,               // EFAILED (upload failed)
        -7 => ErrorKind::RangeNotSatisfiable,     // ERANGE
        -8 => ErrorKind::Transient,               // EEXPIRED (upload URL)
        -9 => ErrorKind::NotFound,                // ENOENT
        -10 | -12 => ErrorKind::AlreadyExists,    // ECIRCULAR, EEXIST
        -11 | -15 | -16 | -26 => ErrorKind::Auth, // EACCESS, ESID, EBLOCKED, EMFAREQUIRED
        -13 | -18 => ErrorKind::Transient,        // EINCOMPLETE, ETEMPUNAVAIL
        -14 => ErrorKind::Integrity,              // EKEY
        -17 | -24 => ErrorKind::QuotaExceeded,    // EOVERQUOTA, EGOINGOVERQUOTA
        _ => ErrorKind::Permanent,
    }
}

pub(crate) fn from_code(what: &str, code: i64) -> StorageError {
    let kind = kind_of_code(code);
    let mut e = StorageError::new(kind, format!("mega {what}: API error {code}"));
    if matches!(kind, ErrorKind::RateLimited | ErrorKind::Transient) {
        e = e.with_retry_after(Some(Duration::from_secs(2)));
    }
    e
}

/// Error for an HTTP status other than 2xx; MEGA's storage nodes answer
/// 509 when the transfer quota is used up.
pub(crate) fn from_status(
    what: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> StorageError {
    const TABLE: csal_http::StatusTable = csal_http::StatusTable::new(&[(509, ErrorKind::RateLimited)]);
    TABLE.error(status, headers, &format!("mega {what}"))
}

/// Error for a transport failure (connect, timeout, broken body).
pub(crate) fn from_transport(what: &str, e: reqwest::Error) -> StorageError {
    csal_http::transport_error(e, &format!("mega {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(kind_of_code(-17), ErrorKind::QuotaExceeded);
        assert_eq!(kind_of_code(-3).class(), csal_core::ErrorClass::Transient);
        assert_eq!(kind_of_code(-4).class(), csal_core::ErrorClass::Transient);
        assert_eq!(kind_of_code(-9), ErrorKind::NotFound);
        assert_eq!(kind_of_code(-15), ErrorKind::Auth);
    }
}
