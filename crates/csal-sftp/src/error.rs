//! ONE table: SSH / SFTP failures -> StorageError kinds.
//!
//! | failure | kind |
//! |---|---|
//! | login refused, host key mismatch (see client.rs) | Auth |
//! | SFTP `SSH_FX_PERMISSION_DENIED` | Auth (the account lacks rights: fix the server or base_dir) |
//! | SFTP `SSH_FX_NO_SUCH_FILE` | NotFound |
//! | SFTP `SSH_FX_FAILURE` with the disk full (checked with statvfs, see write.rs) | QuotaExceeded |
//! | SFTP `SSH_FX_FAILURE` otherwise, `BAD_MESSAGE` | Permanent |
//! | SFTP `SSH_FX_OP_UNSUPPORTED` | Unsupported |
//! | SFTP `NO_CONNECTION` / `CONNECTION_LOST`, I/O errors, channel closed | Transient |
//! | reply timeout | Timeout (class Transient) |
//! | SSH disconnect, I/O, key-exchange failures, keepalive loss | Transient |

use csal_core::{ErrorKind, StorageError};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::StatusCode;

pub(crate) fn map_sftp(err: SftpError, what: &str) -> StorageError {
    let (kind, detail) = match &err {
        SftpError::Status(status) => {
            let kind = match status.status_code {
                StatusCode::NoSuchFile => ErrorKind::NotFound,
                StatusCode::PermissionDenied => ErrorKind::Auth,
                StatusCode::OpUnsupported => ErrorKind::Unsupported,
                StatusCode::NoConnection | StatusCode::ConnectionLost => ErrorKind::Transient,
                StatusCode::Eof => ErrorKind::Integrity,
                StatusCode::Ok | StatusCode::Failure | StatusCode::BadMessage => ErrorKind::Permanent,
            };
            (kind, status.status_code.to_string())
        }
        SftpError::Timeout => (ErrorKind::Timeout, "no reply in time".to_owned()),
        SftpError::IO(_) => (ErrorKind::Transient, "connection error".to_owned()),
        SftpError::UnexpectedBehavior(_) | SftpError::UnexpectedPacket => {
            (ErrorKind::Transient, "connection closed or protocol error".to_owned())
        }
        SftpError::Limited(_) => (ErrorKind::Permanent, "server limit exceeded".to_owned()),
    };
    StorageError::new(kind, format!("{what}: {detail}")).with_source(err)
}

pub(crate) fn map_ssh(err: russh::Error, what: &str) -> StorageError {
    use russh::Error as E;
    let kind = match &err {
        E::NotAuthenticated | E::NoAuthMethod => ErrorKind::Auth,
        E::UnknownKey | E::WrongServerSig => ErrorKind::Auth,
        E::ConnectionTimeout | E::KeepaliveTimeout | E::InactivityTimeout => ErrorKind::Timeout,
        _ => ErrorKind::Transient,
    };
    StorageError::new(kind, format!("{what}: {}", short(&err))).with_source(err)
}

/// A short, secret-free description of an SSH error.
fn short(err: &russh::Error) -> String {
    let text = err.to_string();
    text.lines().next().unwrap_or("ssh error").chars().take(120).collect()
}

/// Whether an SFTP status says "failure" (OpenSSH's answer to many errno values).
pub(crate) fn is_generic_failure(err: &StorageError) -> bool {
    err.kind() == ErrorKind::Permanent && err.message().ends_with(": Failure")
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh_sftp::protocol::Status;

    fn status(code: StatusCode) -> SftpError {
        SftpError::Status(Status {
            id: 1,
            status_code: code,
            error_message: String::new(),
            language_tag: String::new(),
        })
    }

    #[test]
    fn table_maps_sftp_statuses() {
        assert_eq!(map_sftp(status(StatusCode::NoSuchFile), "x").kind(), ErrorKind::NotFound);
        assert_eq!(map_sftp(status(StatusCode::PermissionDenied), "x").kind(), ErrorKind::Auth);
        assert_eq!(map_sftp(status(StatusCode::ConnectionLost), "x").kind(), ErrorKind::Transient);
        assert_eq!(map_sftp(SftpError::Timeout, "x").kind(), ErrorKind::Timeout);
        assert_eq!(map_sftp(SftpError::IO("reset".into()), "x").kind(), ErrorKind::Transient);
        assert!(is_generic_failure(&map_sftp(status(StatusCode::Failure), "rename")));
    }
}
