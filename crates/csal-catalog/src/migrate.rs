//! Versioned schema migrations, embedded in the binary (sqlx's `Migrator`
//! built by hand: no `macros` feature). One directory per backend, same
//! versions and meaning in both; each migration runs in a transaction.
//!
//! Rules: never edit a released migration (its checksum is recorded in
//! `_sqlx_migrations`), add a new numbered file to both directories.
//! Unknown newer versions in the database are tolerated (`ignore_missing`),
//! so an older node keeps working while a newer one has added columns or
//! tables, as long as migrations stay additive.

use std::borrow::Cow;

use csal_core::{Result, StorageError};
use csal_sql::{Backend, map_sqlx};
use sqlx::AnyPool;
use sqlx::migrate::{Migration, MigrationType, Migrator};

const SQLITE: &[(i64, &str, &str)] = &[
    (1, "catalog", include_str!("../migrations/sqlite/0001_catalog.sql")),
    (2, "recording", include_str!("../migrations/sqlite/0002_recording.sql")),
    (3, "sessions", include_str!("../migrations/sqlite/0003_sessions.sql")),
    (4, "retention", include_str!("../migrations/sqlite/0004_retention.sql")),
    (5, "tiering", include_str!("../migrations/sqlite/0005_tiering.sql")),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "catalog", include_str!("../migrations/postgres/0001_catalog.sql")),
    (2, "recording", include_str!("../migrations/postgres/0002_recording.sql")),
    (3, "sessions", include_str!("../migrations/postgres/0003_sessions.sql")),
    (4, "retention", include_str!("../migrations/postgres/0004_retention.sql")),
    (5, "tiering", include_str!("../migrations/postgres/0005_tiering.sql")),
];

pub(crate) fn migrator(backend: Backend) -> Migrator {
    let set = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let migrations: Vec<Migration> = set
        .iter()
        .map(|(v, d, sql)| Migration::new(*v, Cow::Borrowed(*d), MigrationType::Simple, Cow::Borrowed(*sql), false))
        .collect();
    Migrator { migrations: Cow::Owned(migrations), ignore_missing: true, locking: true, no_tx: false }
}

/// Latest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 5;

pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<()> {
    migrator(backend).run(pool).await.map_err(|e| match e {
        sqlx::migrate::MigrateError::Execute(inner) => map_sqlx(inner, backend, "apply catalog migrations"),
        sqlx::migrate::MigrateError::ExecuteMigration(inner, v) => {
            map_sqlx(inner, backend, &format!("apply catalog migration {v}"))
        }
        other => StorageError::permanent(format!("catalog migrations failed: {other}")),
    })
}
