//! The one table from database errors to [`StorageError`] kinds.
//!
//! Used by the `db` provider and by `csal-catalog`. Messages are our own and
//! never quote SQL parameters; the driver's error is kept as the source.

use csal_core::{ErrorKind, StorageError};

use crate::Backend;

/// The server's certificate was refused (Permanent: only new trust roots help).
pub const UNTRUSTED_DATABASE_CERTIFICATE: &str = "the database server's TLS certificate is not trusted: \
     give the CA that signed it with sslrootcert=PATH in the URL (or --catalog-ca-file)";

/// Map a sqlx error to a classified [`StorageError`]; `what` names the
/// operation in plain words ("write object chunks", "open the catalog").
pub fn map_sqlx(err: sqlx::Error, backend: Backend, what: &str) -> StorageError {
    if csal_core::tls::is_untrusted_certificate(&err) {
        return StorageError::new(
            ErrorKind::Permanent,
            format!("{what}: {UNTRUSTED_DATABASE_CERTIFICATE} ({backend})"),
        )
        .with_source(err);
    }
    let kind = classify(&err, backend);
    let detail = match &err {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("database error {code}"),
            None => "database error".to_owned(),
        },
        sqlx::Error::Io(_) => "cannot reach the database".to_owned(),
        sqlx::Error::Tls(_) => "TLS error talking to the database".to_owned(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a database connection".to_owned(),
        sqlx::Error::PoolClosed => "the database pool is closed".to_owned(),
        sqlx::Error::Configuration(_) => "bad database URL or options".to_owned(),
        sqlx::Error::RowNotFound => "row not found".to_owned(),
        sqlx::Error::Protocol(_) => "database protocol error".to_owned(),
        _ => "unexpected database reply (schema mismatch?)".to_owned(),
    };
    StorageError::new(kind, format!("{what}: {detail} ({backend})")).with_source(err)
}

/// | error | kind |
/// |---|---|
/// | unique / primary key violation (sqlite 1555, 2067; pg 23505) | AlreadyExists |
/// | sqlite BUSY (5), LOCKED (6), IOERR (10); pg 08*, 40001, 40P01, 55P03, 57P01-03, 53300 | Transient |
/// | sqlite FULL (13); pg 53100 disk full, 54000 | QuotaExceeded |
/// | sqlite READONLY (8), PERM (3), AUTH (23); pg 28*, 42501 | Auth |
/// | sqlite CANTOPEN (14), NOTADB (26); pg 3D000 (no such database) | InvalidConfig |
/// | sqlite CORRUPT (11) | Integrity |
/// | I/O, TLS, protocol, pool timeout, worker crash | Transient |
/// | pool closed | Unavailable |
/// | bad URL / options | InvalidConfig |
/// | row not found | NotFound |
/// | decode / column / type errors | Permanent |
pub fn classify(err: &sqlx::Error, backend: Backend) -> ErrorKind {
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match backend {
                Backend::Sqlite => classify_sqlite(&code),
                Backend::Postgres => classify_postgres(&code),
            }
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolTimedOut => {
            ErrorKind::Transient
        }
        sqlx::Error::WorkerCrashed => ErrorKind::Transient,
        sqlx::Error::PoolClosed => ErrorKind::Unavailable,
        sqlx::Error::Configuration(_) => ErrorKind::InvalidConfig,
        sqlx::Error::RowNotFound => ErrorKind::NotFound,
        _ => ErrorKind::Permanent,
    }
}

fn classify_sqlite(code: &str) -> ErrorKind {
    let Ok(extended) = code.parse::<i64>() else { return ErrorKind::Permanent };
    if extended == 1555 || extended == 2067 {
        return ErrorKind::AlreadyExists;
    }
    match extended & 0xff {
        5 | 6 | 10 => ErrorKind::Transient,
        13 => ErrorKind::QuotaExceeded,
        3 | 8 | 23 => ErrorKind::Auth,
        14 | 26 => ErrorKind::InvalidConfig,
        11 => ErrorKind::Integrity,
        _ => ErrorKind::Permanent,
    }
}

fn classify_postgres(code: &str) -> ErrorKind {
    match code {
        "23505" => ErrorKind::AlreadyExists,
        "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" | "53300" => ErrorKind::Transient,
        "53100" | "54000" => ErrorKind::QuotaExceeded,
        "42501" => ErrorKind::Auth,
        "3D000" => ErrorKind::InvalidConfig,
        c if c.starts_with("08") => ErrorKind::Transient,
        c if c.starts_with("28") => ErrorKind::Auth,
        _ => ErrorKind::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(classify_sqlite("2067"), ErrorKind::AlreadyExists);
        assert_eq!(classify_sqlite("517"), ErrorKind::Transient); // SQLITE_BUSY_SNAPSHOT
        assert_eq!(classify_sqlite("13"), ErrorKind::QuotaExceeded);
        assert_eq!(classify_sqlite("x"), ErrorKind::Permanent);
        assert_eq!(classify_postgres("28P01"), ErrorKind::Auth);
        assert_eq!(classify_postgres("08006"), ErrorKind::Transient);
        assert_eq!(classify_postgres("23505"), ErrorKind::AlreadyExists);
        assert_eq!(classify(&sqlx::Error::PoolTimedOut, Backend::Sqlite), ErrorKind::Transient);
    }
}
