//! # csal-sql
//!
//! The SQL plumbing shared by `csal-catalog` and the `db` provider (so the
//! catalog does not depend on a provider crate): [`DbLocation`] parses a
//! SQLite or PostgreSQL URL and opens a pool through `sqlx::Any`;
//! [`map_sqlx`] is the one table from database errors to `StorageError`
//! kinds.
#![warn(missing_docs)]

mod error;
mod location;

use std::fmt;

pub use error::{classify, map_sqlx};
pub use location::DbLocation;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (`sqlite://`).
    Sqlite,
    /// A PostgreSQL server (`postgres://`).
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}
