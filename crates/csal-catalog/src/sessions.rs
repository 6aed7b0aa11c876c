//! Admin UI sessions, kept in the catalog so that every node and every
//! restart agree on who is logged in, and one statement can end them all
//! (`csal admin set-password`).
//!
//! The session id is 32 random bytes (URL-safe base64) that only the
//! browser's cookie holds; the table keys rows by its SHA-256, so reading
//! the database does not give a usable cookie. A session is valid while
//! (1) its absolute end has not passed, (2) it was used within the idle
//! limit, and (3) its `epoch` equals the catalog's session epoch, which
//! [`Catalog::end_sessions`] bumps. Session writes do not bump the catalog's
//! change counter (they are not configuration).

use std::time::{Duration, SystemTime};

use base64::Engine;
use csal_core::{Result, StorageError};
use sha2::Digest;
use sqlx::Row;

use crate::Catalog;
use crate::records::{ms_to_time, now_ms};

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Ended when unused this long.
    pub idle: Duration,
    /// Ended this long after it was created, however busy.
    pub absolute: Duration,
    /// Sessions that never logged in kept at most (a login-page flood
    /// drops the oldest of them, never a logged-in one).
    pub max_unauthenticated: u64,
}

/// One live session (its id is not in here: only the cookie has it).
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The session's CSRF token (forms and `X-CSRF-Token`).
    pub csrf: String,
    /// Logged in (a pre-login session only carries the login form's CSRF token).
    pub authenticated: bool,
    /// When it was created.
    pub created_at: SystemTime,
    /// The absolute end.
    pub expires_at: SystemTime,
}

/// `last_seen_at` is written at most this often per session.
const TOUCH_EVERY_MS: i64 = 60_000;

fn random_token(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|_| StorageError::permanent("the operating system random generator failed"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

fn id_hash(id: &str) -> String {
    sha2::Sha256::digest(id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Catalog {
    /// The current session epoch. Read it before checking a password and
    /// pass it to [`Catalog::create_session`]: a session created with an
    /// epoch that [`Catalog::end_sessions`] has moved past is never valid,
    /// so a password check that raced a password change cannot log in.
    pub async fn session_epoch(&self) -> Result<i64> {
        let err = self.err("read the session epoch");
        let row = sqlx::query("SELECT epoch FROM csal_session_state WHERE id = 1")
            .fetch_one(self.pool())
            .await
            .map_err(&err)?;
        row.try_get::<i64, _>("epoch").map_err(err)
    }

    /// A new session; returns its id (for the cookie only) and record.
    /// Expired sessions and sessions of ended epochs are removed on the way.
    pub async fn create_session(
        &self,
        authenticated: bool,
        epoch: i64,
        limits: &SessionLimits,
    ) -> Result<(String, SessionRecord)> {
        let err = self.err("create a session");
        let now = now_ms();
        sqlx::query(
            "DELETE FROM csal_sessions WHERE expires_at <= $1 OR last_seen_at <= $2 \
             OR epoch <> (SELECT epoch FROM csal_session_state WHERE id = 1)",
        )
        .bind(now)
        .bind(now.saturating_sub(ms(limits.idle)))
        .execute(self.pool())
        .await
        .map_err(&err)?;
        if !authenticated {
            let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM csal_sessions WHERE authenticated = 0")
                .fetch_one(self.pool())
                .await
                .and_then(|r| r.try_get("n"))
                .map_err(&err)?;
            let excess = count + 1 - i64::try_from(limits.max_unauthenticated).unwrap_or(i64::MAX);
            if excess > 0 {
                sqlx::query(
                    "DELETE FROM csal_sessions WHERE id_hash IN (SELECT id_hash FROM csal_sessions \
                     WHERE authenticated = 0 ORDER BY created_at LIMIT $1)",
                )
                .bind(excess)
                .execute(self.pool())
                .await
                .map_err(&err)?;
            }
        }
        let id = random_token(32)?;
        let csrf = random_token(24)?;
        let expires_at = now.saturating_add(ms(limits.absolute));
        sqlx::query(
            "INSERT INTO csal_sessions (id_hash, csrf, authenticated, epoch, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id_hash(&id))
        .bind(&csrf)
        .bind(i64::from(authenticated))
        .bind(epoch)
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await
        .map_err(&err)?;
        let record =
            SessionRecord { csrf, authenticated, created_at: ms_to_time(now), expires_at: ms_to_time(expires_at) };
        Ok((id, record))
    }

    /// The live session `id` (its idle clock restarted), or `None` when it
    /// is unknown, expired or ended.
    pub async fn session(&self, id: &str, limits: &SessionLimits) -> Result<Option<SessionRecord>> {
        let err = self.err("read a session");
        let hash = id_hash(id);
        let row = sqlx::query(
            "SELECT s.csrf, s.authenticated, s.epoch, s.created_at, s.last_seen_at, s.expires_at, st.epoch AS current \
             FROM csal_sessions s, csal_session_state st WHERE s.id_hash = $1 AND st.id = 1",
        )
        .bind(&hash)
        .fetch_optional(self.pool())
        .await
        .map_err(&err)?;
        let Some(row) = row else { return Ok(None) };
        let get = |c: &str| row.try_get::<i64, _>(c).map_err(&err);
        let (epoch, current, last_seen, expires_at) =
            (get("epoch")?, get("current")?, get("last_seen_at")?, get("expires_at")?);
        let now = now_ms();
        if epoch != current || expires_at <= now || last_seen.saturating_add(ms(limits.idle)) <= now {
            self.delete_session(id).await?;
            return Ok(None);
        }
        if now - last_seen >= TOUCH_EVERY_MS {
            sqlx::query("UPDATE csal_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(&hash)
                .execute(self.pool())
                .await
                .map_err(&err)?;
        }
        Ok(Some(SessionRecord {
            csrf: row.try_get("csrf").map_err(&err)?,
            authenticated: get("authenticated")? != 0,
            created_at: ms_to_time(get("created_at")?),
            expires_at: ms_to_time(expires_at),
        }))
    }

    /// Remove one session (log out). Removing a missing one succeeds.
    pub async fn delete_session(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM csal_sessions WHERE id_hash = $1")
            .bind(id_hash(id))
            .execute(self.pool())
            .await
            .map_err(self.err("delete a session"))?;
        Ok(())
    }

    /// End every session on every node: bump the epoch (so a session being
    /// created right now with the old epoch is born invalid) and delete
    /// the rows, in one transaction.
    pub async fn end_sessions(&self) -> Result<()> {
        let err = self.err("end every session");
        let mut tx = self.pool().begin().await.map_err(&err)?;
        sqlx::query("UPDATE csal_session_state SET epoch = epoch + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::query("DELETE FROM csal_sessions").execute(&mut *tx).await.map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        tracing::info!("every admin session was ended");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_key_is_a_hash_of_the_cookie_value() {
        let h = id_hash("abc");
        assert_eq!(h.len(), 64);
        assert_ne!(h, "abc");
        assert_eq!(h, id_hash("abc"));
    }
}
