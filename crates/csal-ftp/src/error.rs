//! ONE table: FTP failures -> StorageError kinds (RFC 959 reply codes).
//!
//! | reply / failure | kind |
//! |---|---|
//! | 530, 532 (not logged in / need account) | Auth |
//! | 421, 425, 426, 450, 451 | Transient |
//! | 452, 552 (insufficient storage, quota) | QuotaExceeded |
//! | 550 | NotFound (callers turn it into Permanent where it means "refused") |
//! | 553 (name not allowed) | Permanent |
//! | 500-504 (command unknown / not implemented) | Unsupported |
//! | other 4xx / 5xx | Transient / Permanent |
//! | I/O error, closed connection, garbled reply | Transient (timeout: Timeout) |
//! | TLS certificate refused | Permanent (set ca_file; accept_invalid_certs only for lab servers) |
//! | other TLS failure | Transient |

use csal_core::{ErrorKind, StorageError};
use suppaftp::FtpError;

pub(crate) fn kind_of_code(code: u32) -> ErrorKind {
    match code {
        530 | 532 => ErrorKind::Auth,
        421 | 425 | 426 | 450 | 451 => ErrorKind::Transient,
        452 | 552 => ErrorKind::QuotaExceeded,
        550 => ErrorKind::NotFound,
        553 => ErrorKind::Permanent,
        500..=504 => ErrorKind::Unsupported,
        400..=499 => ErrorKind::Transient,
        _ => ErrorKind::Permanent,
    }
}

/// The reply code of an error, if the server sent one.
pub(crate) fn code(err: &StorageError) -> Option<u32> {
    err.message().rsplit_once("reply ").and_then(|(_, c)| c.get(..3)).and_then(|c| c.parse().ok())
}

pub(crate) fn map_ftp(err: FtpError, what: &str) -> StorageError {
    let (kind, detail) = match &err {
        FtpError::UnexpectedResponse(resp) => {
            let code = resp.status.code();
            (kind_of_code(code), format!("server reply {code}"))
        }
        FtpError::ConnectionError(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            (ErrorKind::Timeout, "connection timed out".to_owned())
        }
        FtpError::ConnectionError(_) => (ErrorKind::Transient, "connection error".to_owned()),
        FtpError::SecureError(text) if text.to_ascii_lowercase().contains("certificate") => {
            (ErrorKind::Permanent, csal_core::tls::UNTRUSTED_CERTIFICATE.to_owned())
        }
        FtpError::SecureError(_) => (ErrorKind::Transient, "TLS error".to_owned()),
        FtpError::BadResponse => (ErrorKind::Transient, "garbled server reply".to_owned()),
        FtpError::InvalidAddress(_) => (ErrorKind::InvalidConfig, "invalid address".to_owned()),
        FtpError::DataConnectionAlreadyOpen => (ErrorKind::Permanent, "data connection already open".to_owned()),
    };
    StorageError::new(kind, format!("{what}: {detail}")).with_source(err)
}

pub(crate) fn io_error(err: std::io::Error, what: &str) -> StorageError {
    let kind = if err.kind() == std::io::ErrorKind::TimedOut { ErrorKind::Timeout } else { ErrorKind::Transient };
    StorageError::new(kind, format!("{what}: connection error")).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use suppaftp::Status;
    use suppaftp::types::Response;

    fn reply(code: u32) -> StorageError {
        map_ftp(FtpError::UnexpectedResponse(Response::new(Status::from(code), Vec::new())), "op")
    }

    #[test]
    fn reply_codes_map_to_kinds() {
        assert_eq!(reply(530).kind(), ErrorKind::Auth);
        for c in [421, 425, 426, 450, 451] {
            assert_eq!(reply(c).kind(), ErrorKind::Transient, "{c}");
        }
        assert_eq!(reply(550).kind(), ErrorKind::NotFound);
        assert_eq!(reply(552).kind(), ErrorKind::QuotaExceeded);
        assert_eq!(code(&reply(552)), Some(552));
        let io = map_ftp(FtpError::ConnectionError(std::io::Error::from(std::io::ErrorKind::ConnectionReset)), "op");
        assert_eq!(io.kind(), ErrorKind::Transient);
    }
}
