//! ONE table from S3 errors to [`StorageError`] kinds, plus `Retry-After`.
//!
//! Every SDK call in this crate goes through [`map_sdk_error`]; nothing else
//! decides what an S3 failure means. Messages are one line built from the
//! S3 error code and our own words; the SDK error is kept as `source` only
//! (its `Debug` can hold request headers).

#[cfg(test)]
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use csal_core::{ErrorKind, StorageError};

/// The table: S3 error code and HTTP status to a kind. Code wins over status.
pub(crate) fn classify(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    use ErrorKind::*;
    if let Some(code) = code {
        let kind = match code {
            "NoSuchKey" | "NoSuchUpload" | "NotFound" => Some(NotFound),
            // A missing bucket is a configuration problem, not a missing object.
            "NoSuchBucket" => Some(InvalidConfig),
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken"
            | "TokenRefreshRequired"
            | "AccountProblem"
            | "AllAccessDisabled"
            | "InvalidSecurity"
            | "AuthorizationHeaderMalformed"
            | "MissingSecurityHeader"
            | "RequestTimeTooSkewed" => Some(Auth),
            "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "TooManyRequests"
            | "RequestLimitExceeded"
            | "TooManyRequestsException" => Some(RateLimited),
            "InternalError"
            | "ServiceUnavailable"
            | "RequestTimeout"
            | "OperationAborted"
            | "ConditionalRequestConflict" => Some(Transient),
            "PreconditionFailed" => Some(AlreadyExists),
            "InvalidRange" => Some(RangeNotSatisfiable),
            "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch" | "IncompleteBody" => Some(Integrity),
            "EntityTooLarge" | "QuotaExceeded" | "StorageQuotaExceeded" => Some(QuotaExceeded),
            "NotImplemented" => Some(Unsupported),
            "InvalidBucketName" | "InvalidArgument" | "InvalidRequest" | "KeyTooLongError" | "InvalidPart"
            | "InvalidPartOrder" | "EntityTooSmall" | "MalformedXML" => Some(Permanent),
            _ => None,
        };
        if let Some(kind) = kind {
            return kind;
        }
    }
    match status {
        Some(404) => NotFound,
        Some(401 | 403) => Auth,
        Some(412) => AlreadyExists,
        Some(416) => RangeNotSatisfiable,
        Some(429 | 503) => RateLimited,
        Some(408 | 500 | 502 | 504) => Transient,
        Some(501) => Unsupported,
        Some(s) if s >= 500 => Transient,
        _ => Permanent,
    }
}

/// `Retry-After` (seconds, fractions, or a date): the one parser in csal-core.
pub(crate) use csal_core::time_format::parse_retry_after;

/// Turn any SDK error into a classified `StorageError`. `what` says what
/// failed in our words (`read 'cam/x.mp4'`).
pub(crate) fn map_sdk_error<E>(err: SdkError<E, HttpResponse>, what: &str) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(failure) = credentials_failure(&err) {
        let (kind, detail) = classify_credentials(failure);
        return StorageError::new(kind, format!("{what}: {detail}")).with_source(err);
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    let retry_after = err.raw_response().and_then(|r| r.headers().get("retry-after")).and_then(parse_retry_after);
    let (kind, detail) = match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code();
            let kind = classify(code, status);
            let detail = match (code, status) {
                (Some(code), Some(s)) => format!("S3 error {code} (HTTP {s})"),
                (Some(code), None) => format!("S3 error {code}"),
                (None, Some(s)) => format!("HTTP {s}"),
                (None, None) => "S3 error".to_owned(),
            };
            (kind, detail)
        }
        SdkError::TimeoutError(_) => (ErrorKind::Timeout, "the request timed out".to_owned()),
        SdkError::DispatchFailure(d) if d.is_timeout() => (ErrorKind::Timeout, "the connection timed out".to_owned()),
        SdkError::DispatchFailure(d) if d.is_user() => {
            (ErrorKind::Permanent, "the request could not be sent (bad input)".to_owned())
        }
        SdkError::DispatchFailure(d)
            if d.as_connector_error().is_some_and(|c| csal_core::tls::is_untrusted_certificate(c)) =>
        {
            (ErrorKind::Permanent, csal_core::tls::UNTRUSTED_CERTIFICATE.to_owned())
        }
        SdkError::DispatchFailure(_) => (ErrorKind::Transient, "connection failed".to_owned()),
        // An answer we could not read (cut off, not XML): the server or the
        // network misbehaved, so trying again may work.
        SdkError::ResponseError(_) => match status {
            Some(s) => (classify(None, Some(s)).max_transient(), format!("unreadable response (HTTP {s})")),
            None => (ErrorKind::Transient, "unreadable response".to_owned()),
        },
        SdkError::ConstructionFailure(_) => (ErrorKind::InvalidInput, "the request could not be built".to_owned()),
        _ => (ErrorKind::Transient, "unknown SDK failure".to_owned()),
    };
    StorageError::new(kind, format!("{what}: {detail}"))
        .with_retry_after(retry_after)
        .with_answer_lost(answer_lost(&err))
        .with_source(err)
}

/// [`StorageError::answer_lost`]: whether a request may have reached the
/// server although no answer was read (the connection dropped, or the answer timed out or came cut off):
/// a write that failed this way may be stored. A server's answer, a
/// request that could not be built and missing credentials are not.
fn answer_lost<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => !d.is_user() && credentials_failure(err).is_none(),
        _ => false,
    }
}

/// The credential provider's error behind a request that was never sent
/// (the SDK reports it as a dispatch failure, somewhere in the source chain).
fn credentials_failure<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a CredentialsError> {
    std::iter::successors(Some(err), |e| e.source()).find_map(|e| e.downcast_ref::<CredentialsError>())
}

/// No credentials found or refused (an SSO session expired, a role not
/// allowed, IMDS without a role) is `Auth`: someone must fix the setup.
fn classify_credentials(err: &CredentialsError) -> (ErrorKind, &'static str) {
    match err {
        CredentialsError::CredentialsNotLoaded(_) => {
            (ErrorKind::Auth, "no AWS credentials found by the credential chain")
        }
        CredentialsError::ProviderTimedOut(_) => (ErrorKind::Timeout, "the AWS credential provider timed out"),
        CredentialsError::InvalidConfiguration(_) => {
            (ErrorKind::InvalidConfig, "the AWS credential setup is invalid (profile files or environment)")
        }
        CredentialsError::ProviderError(_) => {
            (ErrorKind::Auth, "the AWS credential provider refused to give credentials")
        }
        _ => (ErrorKind::Transient, "the AWS credential provider failed"),
    }
}

trait MaxTransient {
    fn max_transient(self) -> ErrorKind;
}
impl MaxTransient for ErrorKind {
    /// An unreadable 2xx is transient, not permanent.
    fn max_transient(self) -> ErrorKind {
        if self == ErrorKind::Permanent { ErrorKind::Transient } else { self }
    }
}

/// A body stream that failed mid-way (connection reset, cut off).
pub(crate) fn body_error(err: impl std::error::Error + Send + Sync + 'static, what: &str) -> StorageError {
    StorageError::transient(format!("{what}: the response body failed mid-way")).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_follows_the_issue() {
        use ErrorKind::*;
        assert_eq!(classify(Some("NoSuchKey"), Some(404)), NotFound);
        assert_eq!(classify(None, Some(404)), NotFound);
        for code in ["AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"] {
            assert_eq!(classify(Some(code), Some(403)), Auth, "{code}");
        }
        assert_eq!(classify(None, Some(403)), Auth);
        assert_eq!(classify(Some("SlowDown"), Some(503)), RateLimited);
        assert_eq!(classify(None, Some(503)), RateLimited);
        assert_eq!(classify(None, Some(429)), RateLimited);
        assert_eq!(classify(Some("InternalError"), Some(500)), Transient);
        assert_eq!(classify(None, Some(500)), Transient);
        assert_eq!(classify(Some("PreconditionFailed"), Some(412)), AlreadyExists);
        assert_eq!(classify(None, Some(412)), AlreadyExists);
        assert_eq!(classify(Some("InvalidRange"), Some(416)), RangeNotSatisfiable);
        assert_eq!(classify(Some("WeirdThing"), Some(400)), Permanent);
        for k in [RateLimited, Transient] {
            assert_eq!(k.class(), csal_core::ErrorClass::Transient);
        }
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        let later = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT").unwrap();
        assert!(later > Duration::from_secs(3600));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
