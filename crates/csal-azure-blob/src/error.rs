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
//! | 409, 413 | `Permanent` (other statuses: the common table of csal-http) |
//! | timeout / connect / broken transfer | `Timeout` / `Transient` |

use csal_core::{ErrorKind, StorageError};
use csal_http::{ErrorAnswer, StatusTable};
use reqwest::{Response, StatusCode};

pub(crate) use csal_http::transport_error as from_reqwest;

const TABLE: StatusTable = StatusTable::new(&[(409, ErrorKind::Permanent), (413, ErrorKind::Permanent)])
    .with_hints(&[(ErrorKind::Auth, "check the account key, SAS token or connection string and its permissions")]);

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
    TABLE.kind(status)
}

/// The error of a non-success answer (at most 8 KiB of its body read).
pub(crate) async fn from_response(response: Response, what: &str) -> StorageError {
    classify(ErrorAnswer::read(response).await, what)
}

pub(crate) fn classify(answer: ErrorAnswer, what: &str) -> StorageError {
    let code = answer.header("x-ms-error-code").map(str::to_owned).or_else(|| xml_tag(&answer.body, "Code"));
    let kind = kind_for(code.as_deref(), answer.status);
    let mut text = format!("{what}: Azure answered {}", answer.status.as_u16());
    if let Some(code) = &code {
        text.push(' ');
        text.push_str(code);
    }
    if let Some(message) = xml_tag(&answer.body, "Message") {
        // The first line only: the rest is request id and time.
        let first = message.lines().next().unwrap_or("").trim();
        if !first.is_empty() {
            text.push_str(": ");
            text.push_str(&csal_http::one_line(first, 200));
        }
    }
    if let Some(hint) = TABLE.hint(kind) {
        text.push_str(&format!(" ({hint})"));
    }
    answer.error(kind, text)
}

/// Text of the first `<tag>` in an XML error body.
fn xml_tag(body: &[u8], tag: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].trim().to_owned())
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
        use reqwest::header::{HeaderMap, RETRY_AFTER};
        use std::time::Duration;
        let body: &[u8] = b"<?xml version=\"1.0\"?><Error><Code>ServerBusy</Code><Message>Ingress is over the account limit.\nRequestId:1</Message></Error>";
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        let e = classify(ErrorAnswer::new(StatusCode::SERVICE_UNAVAILABLE, h, body), "write x");
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(e.message().contains("Ingress is over the account limit.") && !e.message().contains("RequestId"));
    }
}
