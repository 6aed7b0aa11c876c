//! The one table that turns Blob service answers into `StorageError` kinds.
//! The `x-ms-error-code` header decides first; the HTTP status is the
//! fallback (HEAD answers carry no body, but they do carry the header).
//!
//! | x-ms-error-code / status | kind |
//! |---|---|
//! | AuthenticationFailed, AuthorizationFailure, Authorization*Mismatch, InvalidAuthenticationInfo, NoAuthenticationInformation, InsufficientAccountPermissions, AccountIsDisabled; 401, 403 | `Auth` |
//! | BlobNotFound, ContainerNotFound, ResourceNotFound; 404 | `NotFound` |
//! | BlobAlreadyExists, ConditionNotMet (our `If-None-Match: *`), ContainerAlreadyExists; 412 | `AlreadyExists` |
//! | InvalidRange; 416 | `RangeNotSatisfiable` |
//! | ServerBusy; 429 | `RateLimited` (+ `Retry-After`) |
//! | OperationTimedOut, InternalError; 408, 500, 502, 503, 504 | `Transient` (+ `Retry-After`) |
//! | Invalid* input codes, MissingRequiredHeader, OutOfRangeInput; 400 | `InvalidInput` |
//! | everything else | `Permanent` |
//! | timeout / connect / broken transfer | `Timeout` / `Transient` |

use std::time::{Duration, SystemTime};

use csal_core::{ErrorKind, StorageError};
use futures::StreamExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Response, StatusCode};

pub(crate) fn kind_for(code: Option<&str>, status: StatusCode) -> ErrorKind {
    if let Some(code) = code {
        let kind = match code {
            "AuthenticationFailed"
            | "AuthorizationFailure"
            | "AuthorizationPermissionMismatch"
            | "AuthorizationResourceTypeMismatch"
            | "AuthorizationServiceMismatch"
            | "AuthorizationProtocolMismatch"
            | "AuthorizationSourceIPMismatch"
            | "InvalidAuthenticationInfo"
            | "NoAuthenticationInformation"
            | "InsufficientAccountPermissions"
            | "AccountIsDisabled" => Some(ErrorKind::Auth),
            "BlobNotFound" | "ContainerNotFound" | "ResourceNotFound" => Some(ErrorKind::NotFound),
            "BlobAlreadyExists" | "ConditionNotMet" | "ContainerAlreadyExists" => Some(ErrorKind::AlreadyExists),
            "InvalidRange" => Some(ErrorKind::RangeNotSatisfiable),
            "ServerBusy" => Some(ErrorKind::RateLimited),
            "OperationTimedOut" | "InternalError" => Some(ErrorKind::Transient),
            "InvalidBlockList"
            | "InvalidBlockId"
            | "InvalidHeaderValue"
            | "InvalidQueryParameterValue"
            | "InvalidInput"
            | "InvalidUri"
            | "InvalidMetadata"
            | "MissingRequiredHeader"
            | "OutOfRangeInput"
            | "InvalidResourceName"
            | "InvalidXmlDocument" => Some(ErrorKind::InvalidInput),
            _ => None,
        };
        if let Some(kind) = kind {
            return kind;
        }
    }
    match status.as_u16() {
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        412 => ErrorKind::AlreadyExists,
        416 => ErrorKind::RangeNotSatisfiable,
        429 => ErrorKind::RateLimited,
        408 | 500 | 502 | 503 | 504 => ErrorKind::Transient,
        400 => ErrorKind::InvalidInput,
        _ => ErrorKind::Permanent,
    }
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

/// The error of a non-success answer; reads at most 8 KiB of its body.
pub(crate) async fn from_response(response: Response, what: &str) -> StorageError {
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk[..chunk.len().min(8192usize.saturating_sub(body.len()))]);
        if body.len() >= 8192 {
            break;
        }
    }
    from_parts(status, &headers, &body, what)
}

pub(crate) fn from_parts(status: StatusCode, headers: &HeaderMap, body: &[u8], what: &str) -> StorageError {
    let code = headers
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| xml_tag(body, "Code"));
    let kind = kind_for(code.as_deref(), status);
    let mut text = format!("{what}: Azure answered {}", status.as_u16());
    if let Some(code) = &code {
        text.push(' ');
        text.push_str(code);
    }
    if let Some(message) = xml_tag(body, "Message") {
        // The first line only: the rest is request id and time.
        let first = message.lines().next().unwrap_or("").trim();
        if !first.is_empty() {
            text.push_str(": ");
            text.push_str(&first.chars().take(200).collect::<String>());
        }
    }
    if kind == ErrorKind::Auth {
        text.push_str(" (check the account key, SAS token or connection string and its permissions)");
    }
    let after = matches!(kind, ErrorKind::Transient | ErrorKind::RateLimited).then(|| retry_after(headers)).flatten();
    StorageError::new(kind, text).with_retry_after(after)
}

/// Text of the first `<tag>` in an XML error body.
fn xml_tag(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].trim().to_owned())
}

/// A transport-level failure. reqwest's text could include the URL, which
/// holds the SAS token in SAS mode: the URL is stripped from the source.
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
    } else if err.is_builder() {
        "the request could not be built (a header value is not ASCII?)"
    } else {
        "the request failed"
    };
    StorageError::new(kind, format!("{what}: {how}")).with_source(err.without_url())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_decide_before_status() {
        let k = |code: &str, s: u16| kind_for(Some(code), StatusCode::from_u16(s).unwrap());
        assert_eq!(k("AuthenticationFailed", 403), ErrorKind::Auth);
        assert_eq!(k("AuthorizationFailure", 403), ErrorKind::Auth);
        assert_eq!(k("BlobNotFound", 404), ErrorKind::NotFound);
        assert_eq!(k("BlobAlreadyExists", 409), ErrorKind::AlreadyExists);
        assert_eq!(k("ConditionNotMet", 412), ErrorKind::AlreadyExists);
        assert_eq!(k("ServerBusy", 503), ErrorKind::RateLimited);
        assert_eq!(k("OperationTimedOut", 500), ErrorKind::Transient);
        assert_eq!(k("InvalidRange", 416), ErrorKind::RangeNotSatisfiable);
        assert_eq!(k("LeaseIdMissing", 412), ErrorKind::AlreadyExists);
        assert_eq!(k("SomethingNew", 409), ErrorKind::Permanent);
        assert_eq!(kind_for(None, StatusCode::SERVICE_UNAVAILABLE), ErrorKind::Transient);
        assert_eq!(kind_for(None, StatusCode::NOT_FOUND), ErrorKind::NotFound);
    }

    #[test]
    fn message_comes_from_the_xml_body_and_retry_after_is_kept() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>ServerBusy</Code><Message>Ingress is over the account limit.\nRequestId:1</Message></Error>";
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        let e = from_parts(StatusCode::SERVICE_UNAVAILABLE, &h, body, "write x");
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(e.message().contains("Ingress is over the account limit.") && !e.message().contains("RequestId"));
    }
}
