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
