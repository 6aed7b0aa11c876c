//! ONE table: Dropbox answers, as dropbox-sdk types them, to `StorageError`
//! kinds.
//!
//! dropbox-sdk turns an answer into [`dropbox_sdk::Error`]: `Api(E)` for an
//! endpoint's own 409 error (typed per route: `UploadError`,
//! `LookupError`, `DeleteError`, ...), `Authentication` (401),
//! `AccessDenied` (403), `RateLimited` (429, with `retry_after`),
//! `BadRequest` (400), `ServerError` (5xx), `UnexpectedHttpError` (others,
//! such as 416), and `HttpClient` for whatever our client reported (a
//! reqwest error, a body read error, or a `StorageError` from a failed token
//! refresh). See the "Errors" section of
//! <https://www.dropbox.com/developers/documentation/http/documentation>.

use std::time::Duration;

use csal_core::{ErrorKind, StorageError};
use dropbox_sdk::files::{
    DeleteError, DownloadError, GetMetadataError, ListFolderContinueError, ListFolderError, LookupError, UploadError,
    UploadSessionAppendError, UploadSessionFinishError, UploadSessionLookupError, UploadSessionStartError, WriteError,
};

/// A route's typed endpoint error and the kind it means.
pub(crate) trait RouteError: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> ErrorKind;
}

impl RouteError for dropbox_sdk::NoError {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

impl RouteError for LookupError {
    fn kind(&self) -> ErrorKind {
        match self {
            LookupError::NotFound | LookupError::NotFile | LookupError::NotFolder => ErrorKind::NotFound,
            LookupError::MalformedPath(_) => ErrorKind::InvalidInput,
            LookupError::UnsupportedContentType => ErrorKind::Unsupported,
            _ => ErrorKind::Permanent, // restricted_content, locked, other
        }
    }
}

impl RouteError for WriteError {
    fn kind(&self) -> ErrorKind {
        match self {
            WriteError::Conflict(_) => ErrorKind::AlreadyExists,
            WriteError::MalformedPath(_) | WriteError::DisallowedName => ErrorKind::InvalidInput,
            WriteError::NoWritePermission | WriteError::TeamFolder | WriteError::AccessRestricted => ErrorKind::Auth,
            WriteError::InsufficientSpace
            | WriteError::TeamFolderInsufficientSpace
            | WriteError::MemberFolderInsufficientSpace
            | WriteError::UploadTrafficLimitReached => ErrorKind::QuotaExceeded,
            WriteError::TooManyWriteOperations => ErrorKind::RateLimited,
            _ => ErrorKind::Permanent, // operation_suppressed, other
        }
    }
}

impl RouteError for UploadError {
    fn kind(&self) -> ErrorKind {
        match self {
            UploadError::Path(failed) => failed.reason.kind(),
            UploadError::PayloadTooLarge | UploadError::PropertiesError(_) => ErrorKind::InvalidInput,
            UploadError::ContentHashMismatch => ErrorKind::Integrity,
            UploadError::EncryptionNotSupported => ErrorKind::Unsupported,
            _ => ErrorKind::Permanent,
        }
    }
}

impl RouteError for UploadSessionStartError {
    fn kind(&self) -> ErrorKind {
        match self {
            UploadSessionStartError::ContentHashMismatch => ErrorKind::Integrity,
            UploadSessionStartError::PayloadTooLarge
            | UploadSessionStartError::ConcurrentSessionDataNotAllowed
            | UploadSessionStartError::ConcurrentSessionCloseNotAllowed => ErrorKind::InvalidInput,
            _ => ErrorKind::Permanent,
        }
    }
}

impl RouteError for UploadSessionLookupError {
    fn kind(&self) -> ErrorKind {
        match self {
            // The session is out of step with us (an answer was lost): the
            // whole upload may be tried again.
            UploadSessionLookupError::IncorrectOffset(_) | UploadSessionLookupError::Closed => ErrorKind::Transient,
            UploadSessionLookupError::TooLarge
            | UploadSessionLookupError::PayloadTooLarge
            | UploadSessionLookupError::ConcurrentSessionInvalidOffset
            | UploadSessionLookupError::ConcurrentSessionInvalidDataSize => ErrorKind::InvalidInput,
            _ => ErrorKind::Permanent, // not_found (expired session), not_closed, other
        }
    }
}

impl RouteError for UploadSessionAppendError {
    fn kind(&self) -> ErrorKind {
        match self {
            UploadSessionAppendError::IncorrectOffset(_) | UploadSessionAppendError::Closed => ErrorKind::Transient,
            UploadSessionAppendError::ContentHashMismatch => ErrorKind::Integrity,
            UploadSessionAppendError::TooLarge
            | UploadSessionAppendError::PayloadTooLarge
            | UploadSessionAppendError::ConcurrentSessionInvalidOffset
            | UploadSessionAppendError::ConcurrentSessionInvalidDataSize => ErrorKind::InvalidInput,
            _ => ErrorKind::Permanent,
        }
    }
}

impl RouteError for UploadSessionFinishError {
    fn kind(&self) -> ErrorKind {
        match self {
            UploadSessionFinishError::LookupFailed(lookup) => lookup.kind(),
            UploadSessionFinishError::Path(write) => write.kind(),
            UploadSessionFinishError::TooManyWriteOperations => ErrorKind::RateLimited,
            UploadSessionFinishError::ContentHashMismatch => ErrorKind::Integrity,
            UploadSessionFinishError::EncryptionNotSupported => ErrorKind::Unsupported,
            UploadSessionFinishError::PropertiesError(_)
            | UploadSessionFinishError::PayloadTooLarge
            | UploadSessionFinishError::ConcurrentSessionDataNotAllowed
            | UploadSessionFinishError::ConcurrentSessionNotClosed
            | UploadSessionFinishError::ConcurrentSessionMissingData => ErrorKind::InvalidInput,
            _ => ErrorKind::Permanent,
        }
    }
}

impl RouteError for DownloadError {
    fn kind(&self) -> ErrorKind {
        match self {
            DownloadError::Path(lookup) => lookup.kind(),
            DownloadError::UnsupportedFile => ErrorKind::Unsupported,
            _ => ErrorKind::Permanent,
        }
    }
}

impl RouteError for GetMetadataError {
    fn kind(&self) -> ErrorKind {
        match self {
            GetMetadataError::Path(lookup) => lookup.kind(),
        }
    }
}

impl RouteError for ListFolderError {
    fn kind(&self) -> ErrorKind {
        match self {
            ListFolderError::Path(lookup) => lookup.kind(),
            ListFolderError::TemplateError(_) => ErrorKind::InvalidInput,
            _ => ErrorKind::Permanent,
        }
    }
}

impl RouteError for ListFolderContinueError {
    fn kind(&self) -> ErrorKind {
        match self {
            ListFolderContinueError::Path(lookup) => lookup.kind(),
            // The cursor is no longer valid: the listing must start over.
            ListFolderContinueError::Reset => ErrorKind::InvalidInput,
            _ => ErrorKind::Permanent,
        }
    }
}

impl RouteError for DeleteError {
    fn kind(&self) -> ErrorKind {
        match self {
            DeleteError::PathLookup(lookup) => lookup.kind(),
            DeleteError::PathWrite(write) => write.kind(),
            DeleteError::TooManyWriteOperations => ErrorKind::RateLimited,
            _ => ErrorKind::Permanent, // too_many_files, other
        }
    }
}

/// Classify a failed route call; `what` says which call on which object,
/// `header_retry_after` is the answer's `Retry-After` header (it wins over
/// the body's `retry_after`).
pub(crate) fn classify<E: RouteError>(
    err: dropbox_sdk::Error<E>,
    what: &str,
    header_retry_after: Option<Duration>,
) -> StorageError {
    use dropbox_sdk::Error as E;
    let (kind, msg, retry_after) = match &err {
        E::Api(e) => {
            let kind = e.kind();
            let msg = match kind {
                ErrorKind::NotFound => format!("{what}: no such file"),
                ErrorKind::AlreadyExists => format!("{what}: a file or folder already exists there"),
                ErrorKind::QuotaExceeded => format!("{what}: the Dropbox is full ({e})"),
                _ => format!("{what}: Dropbox refused: {e}"),
            };
            (kind, msg, header_retry_after)
        }
        E::HttpClient(inner) => {
            if inner.is::<StorageError>() {
                // A failed token refresh, already classified by csal-oauth.
                let E::HttpClient(inner) = err else { unreachable!() };
                let e = inner.downcast::<StorageError>().expect("checked");
                return *e;
            }
            let timeout = inner.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_timeout)
                || inner.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
            let kind = if timeout { ErrorKind::Timeout } else { ErrorKind::Transient };
            (kind, format!("{what}: cannot reach Dropbox"), None)
        }
        E::Json(_) | E::UnexpectedResponse(_) => {
            (ErrorKind::Transient, format!("{what}: Dropbox answered with something unexpected"), None)
        }
        E::BadRequest(_) => {
            (ErrorKind::InvalidInput, format!("{what}: Dropbox refused the request as malformed"), None)
        }
        E::Authentication(e) => (
            ErrorKind::Auth,
            format!("{what}: Dropbox refused the access token ({e}); re-authorise the app if this persists"),
            None,
        ),
        E::AccessDenied(e) => (ErrorKind::Auth, format!("{what}: the app lacks permission or a scope ({e})"), None),
        E::RateLimited { reason, retry_after_seconds } => (
            ErrorKind::RateLimited,
            format!("{what}: Dropbox is rate limiting ({reason})"),
            header_retry_after
                .or_else(|| (*retry_after_seconds > 0).then(|| Duration::from_secs(u64::from(*retry_after_seconds)))),
        ),
        E::ServerError(_) => (ErrorKind::Transient, format!("{what}: Dropbox server error"), header_retry_after),
        E::UnexpectedHttpError { code: 416, .. } => {
            (ErrorKind::RangeNotSatisfiable, format!("{what}: range starts past the end of the file"), None)
        }
        E::UnexpectedHttpError { code, .. } if *code >= 500 || *code == 429 => {
            (ErrorKind::Transient, format!("{what}: Dropbox answered HTTP {code}"), header_retry_after)
        }
        E::UnexpectedHttpError { code, .. } => {
            (ErrorKind::Permanent, format!("{what}: unexpected HTTP {code} from Dropbox"), None)
        }
    };
    StorageError::new(kind, msg).with_retry_after(retry_after).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dropbox_sdk::files::{UploadSessionOffsetError, WriteConflictError};

    /// Parse a 409 body as the SDK does (`{"error": ...}`), then classify.
    fn api<E: RouteError + serde::de::DeserializeOwned>(error: serde_json::Value) -> StorageError {
        let e: E = serde_json::from_str(&error.to_string()).unwrap();
        classify(dropbox_sdk::Error::Api(e), "x", None)
    }

    #[test]
    fn endpoint_errors_map_to_kinds() {
        let not_found = serde_json::json!({".tag": "path", "path": {".tag": "not_found"}});
        assert_eq!(api::<GetMetadataError>(not_found.clone()).kind(), ErrorKind::NotFound);
        assert_eq!(api::<DownloadError>(not_found).kind(), ErrorKind::NotFound);
        let lookup = serde_json::json!({".tag": "path_lookup", "path_lookup": {".tag": "not_found"}});
        assert_eq!(api::<DeleteError>(lookup).kind(), ErrorKind::NotFound);
        let conflict = serde_json::json!({".tag": "path", "reason": {".tag": "conflict", "conflict": {".tag": "file"}},
                                          "upload_session_id": "s"});
        assert_eq!(api::<UploadError>(conflict).kind(), ErrorKind::AlreadyExists);
        let full = serde_json::json!({".tag": "path", "path": {".tag": "insufficient_space"}});
        assert_eq!(api::<UploadSessionFinishError>(full).kind(), ErrorKind::QuotaExceeded);
        let busy = serde_json::json!({".tag": "too_many_write_operations"});
        assert_eq!(api::<DeleteError>(busy).kind(), ErrorKind::RateLimited);
        let unknown = serde_json::json!({".tag": "some_future_tag"});
        assert_eq!(api::<UploadSessionAppendError>(unknown).kind(), ErrorKind::Permanent);
    }

    #[test]
    fn typed_variants_map_to_kinds() {
        assert_eq!(WriteError::Conflict(WriteConflictError::Folder).kind(), ErrorKind::AlreadyExists);
        let offset: UploadSessionOffsetError =
            serde_json::from_str(&serde_json::json!({"correct_offset": 4}).to_string()).unwrap();
        assert_eq!(UploadSessionAppendError::IncorrectOffset(offset).kind(), ErrorKind::Transient);
        assert_eq!(ListFolderContinueError::Reset.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn transport_level_errors_map_to_kinds() {
        let e = |err: dropbox_sdk::Error| classify(err, "x", None).kind();
        assert_eq!(e(dropbox_sdk::Error::BadRequest("Error in call to API function".into())), ErrorKind::InvalidInput);
        assert_eq!(e(dropbox_sdk::Error::ServerError(String::new())), ErrorKind::Transient);
        assert_eq!(
            e(dropbox_sdk::Error::UnexpectedHttpError { code: 416, response: String::new() }),
            ErrorKind::RangeNotSatisfiable
        );
        let auth = serde_json::from_str(&serde_json::json!({".tag": "invalid_access_token"}).to_string()).unwrap();
        assert_eq!(e(dropbox_sdk::Error::Authentication(auth)), ErrorKind::Auth);
        let refresh_failed = StorageError::auth("refresh refused: re-authorise");
        let err = classify::<dropbox_sdk::NoError>(dropbox_sdk::Error::HttpClient(Box::new(refresh_failed)), "x", None);
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(err.to_string().contains("re-authorise"));
    }

    #[test]
    fn rate_limit_carries_retry_after_from_the_body_or_the_header() {
        let reason: dropbox_sdk::types::auth::RateLimitReason =
            serde_json::from_str(&serde_json::json!({".tag": "too_many_requests"}).to_string()).unwrap();
        let err = || dropbox_sdk::Error::<dropbox_sdk::NoError>::RateLimited {
            reason: reason.clone(),
            retry_after_seconds: 7,
        };
        let e = classify(err(), "x", None);
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        let e = classify(err(), "x", Some(Duration::from_secs(3)));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    }
}
