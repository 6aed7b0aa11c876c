//! HTTP failures to `StorageError`: the status table, `Retry-After`,
//! transport errors, and error answers read with a cap.

use std::time::Duration;

use bytes::Bytes;
use csal_core::{ErrorKind, StorageError};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How much of an error answer's body is read: enough for any service's
/// error JSON or XML, never a whole object a broken server sends instead.
pub const ERROR_BODY_LIMIT: usize = 8 * 1024;

/// How long reading an error body may take in all (a server dribbling it
/// out must not hold the call beyond this).
const ERROR_BODY_TIME: Duration = Duration::from_secs(10);

/// `Retry-After` of an answer (seconds, fractions or a date).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    csal_core::time_format::parse_retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?)
}

/// HTTP status → [`ErrorKind`]: the common meaning of each status, with a
/// provider's own exceptions in `overrides` (checked first).
///
/// | status | kind |
/// |---|---|
/// | 400 | `InvalidInput` |
/// | 401, 403 | `Auth` |
/// | 404, 410 | `NotFound` |
/// | 409, 412 | `AlreadyExists` (a conditional create lost) |
/// | 413, 507 | `QuotaExceeded` |
/// | 416 | `RangeNotSatisfiable` |
/// | 429 | `RateLimited` |
/// | 408, 423, 425, 5xx | `Transient` |
/// | anything else | `Permanent` |
#[derive(Debug, Clone, Copy)]
pub struct StatusTable {
    overrides: &'static [(u16, ErrorKind)],
    hints: &'static [(ErrorKind, &'static str)],
}

impl StatusTable {
    /// The common table.
    pub const COMMON: StatusTable = StatusTable::new(&[]);

    /// The common table with this provider's exceptions (status code, kind), checked first.
    pub const fn new(overrides: &'static [(u16, ErrorKind)]) -> Self {
        StatusTable { overrides, hints: &[] }
    }

    /// What to tell the admin for a kind (`Auth`: "check the password").
    pub const fn with_hints(mut self, hints: &'static [(ErrorKind, &'static str)]) -> Self {
        self.hints = hints;
        self
    }

    /// The kind of a failed answer's status: the overrides first, then the common table.
    pub fn kind(&self, status: StatusCode) -> ErrorKind {
        let code = status.as_u16();
        if let Some((_, kind)) = self.overrides.iter().find(|(c, _)| *c == code) {
            return *kind;
        }
        match code {
            400 => ErrorKind::InvalidInput,
            401 | 403 => ErrorKind::Auth,
            404 | 410 => ErrorKind::NotFound,
            409 | 412 => ErrorKind::AlreadyExists,
            413 | 507 => ErrorKind::QuotaExceeded,
            416 => ErrorKind::RangeNotSatisfiable,
            429 => ErrorKind::RateLimited,
            408 | 423 | 425 | 500..=599 => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        }
    }

    /// The hint for `kind`, if the provider gave one.
    pub fn hint(&self, kind: ErrorKind) -> Option<&'static str> {
        self.hints.iter().find(|(k, _)| *k == kind).map(|(_, h)| *h)
    }

    /// The error for an answer of which only status and headers are known
    /// (a HEAD, or a body already consumed): `{what}: HTTP 404 Not Found`.
    pub fn error(&self, status: StatusCode, headers: &HeaderMap, what: &str) -> StorageError {
        let kind = self.kind(status);
        let reason = status.canonical_reason().unwrap_or("");
        let mut text = format!("{what}: HTTP {} {reason}", status.as_u16());
        if let Some(hint) = self.hint(kind) {
            text.push_str(": ");
            text.push_str(hint);
        }
        with_retry_after(StorageError::new(kind, text.trim_end().to_owned()), headers)
    }
}

/// Attach `Retry-After` when the kind is worth retrying.
fn with_retry_after(err: StorageError, headers: &HeaderMap) -> StorageError {
    let after = matches!(err.kind(), ErrorKind::Transient | ErrorKind::RateLimited | ErrorKind::Timeout)
        .then(|| retry_after(headers))
        .flatten();
    err.with_retry_after(after)
}

/// A request that got no (complete) answer: timed out, could not connect,
/// broke off ([`StorageError::answer_lost`] unless it never left). The URL is dropped from the source (it may hold a SAS or
/// signed query).
pub fn transport_error(err: reqwest::Error, what: &str) -> StorageError {
    let (kind, how) = if err.is_timeout() {
        (ErrorKind::Timeout, "no answer in time")
    } else if err.is_builder() {
        (ErrorKind::InvalidInput, "the request could not be built (a header value is not ASCII?)")
    } else if err.is_connect() && csal_core::tls::is_untrusted_certificate(&err) {
        (ErrorKind::Permanent, csal_core::tls::UNTRUSTED_CERTIFICATE)
    } else if err.is_connect() {
        (ErrorKind::Transient, "cannot connect to the server")
    } else if err.is_body() || err.is_decode() {
        (ErrorKind::Transient, "the transfer broke off")
    } else {
        (ErrorKind::Transient, "the request failed")
    };
    // Not connected, or not built: the request never reached the server.
    let lost = !err.is_connect() && !err.is_builder();
    StorageError::new(kind, format!("{what}: {how}")).with_answer_lost(lost).with_source(err.without_url())
}

/// A non-success answer: status, headers and at most [`ERROR_BODY_LIMIT`]
/// bytes of its body. It is the `source` of the errors made from it; its
/// `Display` shows only the status.
#[derive(Debug)]
pub struct ErrorAnswer {
    /// The answer's status code.
    pub status: StatusCode,
    /// The answer's headers (`Retry-After`, a service's error code header).
    pub headers: HeaderMap,
    /// The start of the body (at most [`ERROR_BODY_LIMIT`] bytes): the service's error document.
    pub body: Bytes,
}

impl std::fmt::Display for ErrorAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}", self.status.as_u16())
    }
}

impl std::error::Error for ErrorAnswer {}

impl ErrorAnswer {
    /// Read an answer's status, headers and the first [`ERROR_BODY_LIMIT`]
    /// bytes of its body (the rest is dropped with the connection). A body
    /// that breaks off or stalls leaves what arrived.
    pub async fn read(response: reqwest::Response) -> ErrorAnswer {
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        let collect = async {
            while let Some(Ok(chunk)) = stream.next().await {
                let room = ERROR_BODY_LIMIT - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= ERROR_BODY_LIMIT {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(ERROR_BODY_TIME, collect).await;
        ErrorAnswer { status, headers, body: Bytes::from(body) }
    }

    /// `response` when it is a success or a redirect (3xx answers mean
    /// something to the caller: a 302 to a download URL, a 308 "resume
    /// incomplete"), else its error answer.
    pub async fn check(response: reqwest::Response) -> Result<reqwest::Response, ErrorAnswer> {
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            Ok(response)
        } else {
            Err(ErrorAnswer::read(response).await)
        }
    }

    /// An answer built from parts (tests, SDK answers).
    pub fn new(status: StatusCode, headers: HeaderMap, body: impl Into<Bytes>) -> ErrorAnswer {
        let mut body: Bytes = body.into();
        body.truncate(ERROR_BODY_LIMIT);
        ErrorAnswer { status, headers, body }
    }

    /// The answer's `Retry-After`, by the one parser of CSAL.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(&self.headers)
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header's text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// An error of `kind` with `message`, this answer as its source, and its
    /// `Retry-After` when the kind is worth retrying.
    pub fn error(self, kind: ErrorKind, message: impl Into<String>) -> StorageError {
        let err = StorageError::new(kind, message.into());
        let err = with_retry_after(err, &self.headers);
        err.with_source(self)
    }

    /// The error a service's table gave `kind`: `{what}: {service} answered
    /// HTTP {status} ({detail})`, the table's hint for the kind appended.
    /// `detail` is the service's own code or message (one line, short).
    pub fn explain(
        self,
        table: &StatusTable,
        kind: ErrorKind,
        service: &str,
        detail: &str,
        what: &str,
    ) -> StorageError {
        let mut text = format!("{what}: {service} answered HTTP {}", self.status.as_u16());
        let detail = one_line(detail, 200);
        if !detail.is_empty() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = table.hint(kind) {
            text.push_str(": ");
            text.push_str(hint);
        }
        self.error(kind, text)
    }

    /// Classified by `table` alone: `{what}: HTTP 503 Service Unavailable`
    /// (+ the table's hint for the kind).
    pub fn classify(self, table: &StatusTable, what: &str) -> StorageError {
        let err = table.error(self.status, &self.headers, what);
        err.with_source(self)
    }
}

/// One line of at most `max` characters of a service's message (control
/// characters become spaces), for error texts.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let flat = flat.trim();
    if flat.chars().count() <= max { flat.to_owned() } else { flat.chars().take(max).collect::<String>() + "..." }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_table_with_overrides() {
        let k = |t: &StatusTable, s: u16| t.kind(StatusCode::from_u16(s).unwrap());
        let common = StatusTable::COMMON;
        for (s, kind) in [
            (400, ErrorKind::InvalidInput),
            (401, ErrorKind::Auth),
            (403, ErrorKind::Auth),
            (404, ErrorKind::NotFound),
            (409, ErrorKind::AlreadyExists),
            (412, ErrorKind::AlreadyExists),
            (413, ErrorKind::QuotaExceeded),
            (416, ErrorKind::RangeNotSatisfiable),
            (423, ErrorKind::Transient),
            (429, ErrorKind::RateLimited),
            (503, ErrorKind::Transient),
            (507, ErrorKind::QuotaExceeded),
            (418, ErrorKind::Permanent),
        ] {
            assert_eq!(k(&common, s), kind, "{s}");
        }
        const SWIFT: StatusTable = StatusTable::new(&[(409, ErrorKind::Transient), (498, ErrorKind::RateLimited)]);
        assert_eq!(k(&SWIFT, 409), ErrorKind::Transient);
        assert_eq!(k(&SWIFT, 498), ErrorKind::RateLimited);
        assert_eq!(k(&SWIFT, 404), ErrorKind::NotFound);
    }

    #[test]
    fn retry_after_only_on_kinds_worth_retrying() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        let table = StatusTable::COMMON.with_hints(&[(ErrorKind::Auth, "check the password")]);
        let e = table.error(StatusCode::SERVICE_UNAVAILABLE, &h, "PUT a");
        assert_eq!((e.kind(), e.retry_after()), (ErrorKind::Transient, Some(Duration::from_secs(7))));
        assert_eq!(e.message(), "PUT a: HTTP 503 Service Unavailable");
        let e = table.error(StatusCode::UNAUTHORIZED, &h, "PUT a");
        assert_eq!(e.retry_after(), None);
        assert!(e.message().ends_with("check the password"), "{e}");
        h.insert(RETRY_AFTER, "0.25".parse().unwrap());
        let e = ErrorAnswer::new(StatusCode::TOO_MANY_REQUESTS, h, "{}").error(ErrorKind::RateLimited, "slow down");
        assert_eq!(e.retry_after(), Some(Duration::from_millis(250)));
    }

    #[test]
    fn messages_are_one_short_line() {
        assert_eq!(one_line("a\nb\tc", 10), "a b c");
        assert_eq!(one_line(&"x".repeat(30), 10), format!("{}...", "x".repeat(10)));
    }
}
