//! ONE table: pCloud's numeric `result` codes (https://docs.pcloud.com/errors/)
//! and HTTP/transport failures -> StorageError kinds.

use std::time::Duration;

use csal_core::{ErrorKind, StorageError};

/// Kind of a pCloud `result` code.
pub(crate) fn kind_of_result(code: i64) -> ErrorKind {
    match code {
        // 1000 Log in required; 2000 Log in failed; 2003 Access denied;
        // 2094 Invalid 'access_token' provided; 2095 access_token revoked.
        1000 | 2000 | 2003 | 2094 | 2095 => ErrorKind::Auth,
        // 2002 A component of parent directory does not exist; 2005 Directory
        // does not exist; 2009 File not found; 2055 Invalid upload id?
        2002 | 2005 | 2009 => ErrorKind::NotFound,
        // 2004 File or folder already exists.
        2004 => ErrorKind::AlreadyExists,
        // 2008 User is over quota.
        2008 => ErrorKind::QuotaExceeded,
        // 4000 Too many login tries from this IP address (and other 4xxx
        // throttling codes).
        4000..=4999 => ErrorKind::RateLimited,
        // 5000 Internal error. Try again later; 5xxx upload/server trouble.
        5000..=5999 => ErrorKind::Transient,
        // 1xxx missing/invalid parameters, 2001 invalid name, 2010 invalid path.
        1001..=1999 | 2001 | 2010 => ErrorKind::InvalidInput,
        _ => ErrorKind::Permanent,
    }
}

/// Error for a non-zero `result` of method `method`.
pub(crate) fn from_result(method: &str, code: i64, message: &str) -> StorageError {
    let kind = kind_of_result(code);
    let msg = truncate(message);
    let mut err = StorageError::new(kind, format!("pcloud {method}: result {code}: {msg}"));
    if kind == ErrorKind::RateLimited {
        // pCloud sends no Retry-After; suggest a pause for the retry layer.
        err = err.with_retry_after(Some(Duration::from_secs(5)));
    }
    err
}

/// Error for an HTTP status other than 2xx (file links, proxies, outages).
pub(crate) fn from_status(
    what: &str,
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
) -> StorageError {
    csal_http::StatusTable::COMMON.error(status, headers, &format!("pcloud {what}"))
}

/// Error for a transport failure (connect, timeout, broken body); the URL,
/// which may carry `auth=`, is never in it.
pub(crate) fn from_transport(what: &str, e: reqwest::Error) -> StorageError {
    csal_http::transport_error(e, &format!("pcloud {what}"))
}

fn truncate(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    if s.len() <= 200 { s } else { format!("{}...", &s[..s.char_indices().nth(200).map_or(s.len(), |(i, _)| i)]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_kinds() {
        assert_eq!(kind_of_result(1000), ErrorKind::Auth);
        assert_eq!(kind_of_result(2000), ErrorKind::Auth);
        assert_eq!(kind_of_result(2094), ErrorKind::Auth);
        assert_eq!(kind_of_result(2009), ErrorKind::NotFound);
        assert_eq!(kind_of_result(2005), ErrorKind::NotFound);
        assert_eq!(kind_of_result(2008), ErrorKind::QuotaExceeded);
        assert_eq!(kind_of_result(4000).class(), csal_core::ErrorClass::Transient);
        assert_eq!(kind_of_result(5000), ErrorKind::Transient);
        assert_eq!(kind_of_result(2001), ErrorKind::InvalidInput);
    }
}
