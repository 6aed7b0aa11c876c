//! Exit codes and the one-line error every command prints on failure.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | other failure (I/O on the local side, internal error) |
//! | 2 | usage or invalid input: bad arguments, malformed JSON config, unknown provider, hostile object id, bad range |
//! | 3 | authentication / authorisation failed at the storage |
//! | 4 | not found or permanent failure (unknown module, missing object, already exists, unsupported, quota, instance unavailable) |
//! | 5 | transient failure (network, timeout, rate limited, integrity): try again later |
//! | 6 | `module test`: the instance answered but is not healthy (degraded or offline) |

use csal_core::{ErrorKind, StorageError};

pub const OK: i32 = 0;
pub const OTHER: i32 = 1;
pub const USAGE: i32 = 2;
pub const AUTH: i32 = 3;
pub const PERMANENT: i32 = 4;
pub const TRANSIENT: i32 = 5;
pub const UNHEALTHY: i32 = 6;

/// A failed command: what to print and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub kind: Option<ErrorKind>,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError { code: USAGE, kind: Some(ErrorKind::InvalidInput), message: message.into() }
    }
    pub fn other(message: impl Into<String>) -> Self {
        CliError { code: OTHER, kind: None, message: message.into() }
    }
    pub fn unhealthy(message: impl Into<String>) -> Self {
        CliError { code: UNHEALTHY, kind: None, message: message.into() }
    }
}

/// The exit code of an error kind.
pub fn code_of(kind: ErrorKind) -> i32 {
    use ErrorKind::*;
    match kind {
        InvalidInput | InvalidConfig | RangeNotSatisfiable => USAGE,
        Auth => AUTH,
        NotFound | AlreadyExists | Unsupported | QuotaExceeded | Locked | Unavailable | Permanent => PERMANENT,
        Transient | Timeout | RateLimited | Integrity => TRANSIENT,
        // Kinds added to csal-core later: the code of their class.
        other => match other.class() {
            csal_core::ErrorClass::Auth => AUTH,
            csal_core::ErrorClass::Transient => TRANSIENT,
            csal_core::ErrorClass::Permanent => PERMANENT,
        },
    }
}

impl From<StorageError> for CliError {
    fn from(e: StorageError) -> Self {
        // Display is one line, secret-free (the router scrubs instance secrets).
        let message = e.to_string().replace(['\n', '\r'], " ");
        CliError { code: code_of(e.kind()), kind: Some(e.kind()), message }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::other(e.to_string())
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
