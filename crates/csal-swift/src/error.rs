//! The one table from Swift / identity HTTP answers and transport failures
//! to `StorageError` kinds.

use csal_core::{ErrorKind, StorageError};
use csal_http::StatusTable;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

pub(crate) use csal_http::transport_error;

/// Swift's differences from the common table.
const TABLE: StatusTable = StatusTable::new(&[
    (400, ErrorKind::Permanent),
    // A 409 on PUT is a container or SLO manifest being changed meanwhile.
    (409, ErrorKind::Transient),
    // 422: the body did not match its ETag (corrupted in transit).
    (422, ErrorKind::Integrity),
    // 498: Swift's ratelimit middleware; 499: the client disconnected.
    (498, ErrorKind::RateLimited),
    (499, ErrorKind::Transient),
])
.with_hints(&[
    (ErrorKind::Auth, "check the credentials, project and container permissions"),
    (ErrorKind::QuotaExceeded, "quota used up or object too large"),
]);

pub(crate) fn status_error(status: StatusCode, headers: &HeaderMap, what: &str) -> StorageError {
    TABLE.error(status, headers, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Swift's own statuses (the common ones are csal-http's tests).
    #[test]
    fn swift_statuses_refine_the_common_table() {
        let e = |c: u16| status_error(StatusCode::from_u16(c).unwrap(), &HeaderMap::new(), "PUT x");
        let kinds: Vec<ErrorKind> = [400, 409, 422, 498, 499].into_iter().map(|c| e(c).kind()).collect();
        use ErrorKind::*;
        assert_eq!(kinds, [Permanent, Transient, Integrity, RateLimited, Transient]);
        assert!(e(401).message().contains("project and container permissions"), "{}", e(401));
    }
}
