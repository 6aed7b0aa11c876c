//! The master key: the check value that proves a node holds the right
//! key, and rotation (every secret re-sealed in one transaction).

use std::sync::Arc;

use csal_core::{Result, StorageError, find_provider};
use csal_sql::{Backend, map_sqlx};
use sqlx::{AnyConnection, AnyPool, Row};

use crate::crypto::{Cipher, MASTER_KEY_ENV, MasterKey};
use crate::modules::{fetch_rows, open_config, reseal_config};
use crate::settings::setting_aad;
use crate::{Catalog, KEY_CHECK_AAD, KEY_CHECK_PLAINTEXT};

impl Catalog {
    // ------------------------------------------------------------- master key

    /// Re-encrypt every secret (module configs, secret settings, the key
    /// check) under `new_key`, in one transaction, and use it from now on.
    /// Afterwards give every other node the new key (env or key file) and
    /// restart it; until then their reloads fail with a key-mismatch error
    /// and they keep the instances they had.
    pub async fn rotate_master_key(&self, new_key: MasterKey) -> Result<()> {
        let new_cipher = Arc::new(new_key.load()?);
        let result = self.rotate_to(new_cipher.clone()).await;
        if result.is_ok() {
            match self.inner.cipher.write() {
                Ok(mut c) => *c = new_cipher,
                Err(p) => *p.into_inner() = new_cipher,
            }
        }
        self.set_rotating_to(None);
        result?;
        tracing::info!("catalog master key rotated");
        self.after_change().await;
        Ok(())
    }

    /// The rotation transaction of [`Catalog::rotate_master_key`].
    async fn rotate_to(&self, new_cipher: Arc<Cipher>) -> Result<()> {
        let backend = self.inner.backend;
        let err = self.err("rotate the master key");
        let mut tx = self.begin_write().await?;
        let old = self.cipher_for_write(&mut tx).await?;
        for row in fetch_rows(&mut tx, backend).await? {
            let plain = open_config(&old, &row)?;
            let fields = find_provider(&row.provider_type).map(|r| r.fields).unwrap_or(&[]);
            let resealed = reseal_config(&new_cipher, &row, fields, &plain)?;
            sqlx::query("UPDATE storage_modules SET config_json = $1 WHERE id = $2")
                .bind(resealed.to_string())
                .bind(&row.id)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        let settings = sqlx::query("SELECT key, value FROM csal_settings WHERE is_secret <> 0")
            .fetch_all(&mut *tx)
            .await
            .map_err(&err)?;
        for s in settings {
            let key: String = s.try_get("key").map_err(&err)?;
            let value: String = s.try_get("value").map_err(&err)?;
            let plain = old.open(&value, &setting_aad(&key), &format!("setting '{key}'"))?;
            sqlx::query("UPDATE csal_settings SET value = $1 WHERE key = $2")
                .bind(new_cipher.seal(&plain, &setting_aad(&key))?)
                .bind(&key)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        sqlx::query("UPDATE csal_catalog_state SET key_check = $1 WHERE id = 1")
            .bind(new_cipher.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)?)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        // From here on this process's writes may see the new key check.
        self.set_rotating_to(Some(new_cipher));
        tx.commit().await.map_err(&err)
    }
}

pub(crate) async fn check_or_set_key(pool: &AnyPool, backend: Backend, cipher: &Cipher) -> Result<()> {
    let err = |e| map_sqlx(e, backend, "check the master key");
    // Only sets it if nobody has: two first nodes racing agree on one key.
    sqlx::query("UPDATE csal_catalog_state SET key_check = $1 WHERE id = 1 AND key_check IS NULL")
        .bind(cipher.seal(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)?)
        .execute(pool)
        .await
        .map_err(err)?;
    let check = read_key_check(&mut *pool.acquire().await.map_err(err)?, backend).await?;
    check_key_matches(cipher, &check)
}

/// The catalog's key check (a known text sealed with its current key).
pub(crate) async fn read_key_check(conn: &mut AnyConnection, backend: Backend) -> Result<String> {
    let err = |e| map_sqlx(e, backend, "read the catalog key check");
    let row = sqlx::query("SELECT key_check FROM csal_catalog_state WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .map_err(err)?;
    let check: Option<String> = row.try_get("key_check").map_err(err)?;
    check.ok_or_else(|| StorageError::permanent("catalog key check is missing"))
}

pub(crate) fn key_matches(cipher: &Cipher, check: &str) -> bool {
    cipher.open(check, KEY_CHECK_AAD, "the catalog").is_ok_and(|text| text == KEY_CHECK_PLAINTEXT)
}

pub(crate) fn check_key_matches(cipher: &Cipher, check: &str) -> Result<()> {
    if key_matches(cipher, check) {
        return Ok(());
    }
    Err(StorageError::auth(format!(
        "the master key does not match the one this catalog was created with (this node has key {}{}); set \
         {MASTER_KEY_ENV} or the key file to the catalog's current key (or restore it from backup)",
        cipher.key_id(),
        Cipher::key_id_of(check).map(|id| format!(", the catalog {id}")).unwrap_or_default()
    )))
}
