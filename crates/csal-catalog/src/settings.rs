//! Admin settings (`csal_settings`), optionally sealed.

use csal_core::Result;

use sqlx::Row;

use crate::Catalog;
use crate::records::{check_key, now_ms};

pub(crate) fn setting_aad(key: &str) -> String {
    format!("csal:setting:{key}")
}

impl Catalog {
    // --------------------------------------------------------------- settings

    /// A setting's value (decrypted if it was stored as secret).
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        check_key("setting key", key)?;
        let row = sqlx::query("SELECT value, is_secret FROM csal_settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(self.err("read setting"))?;
        let Some(row) = row else { return Ok(None) };
        let err = self.err("read setting");
        let value: String = row.try_get("value").map_err(&err)?;
        let secret: i64 = row.try_get("is_secret").map_err(&err)?;
        if secret != 0 {
            return self.cipher().open(&value, &setting_aad(key), &format!("setting '{key}'")).map(Some);
        }
        Ok(Some(value))
    }

    /// Store a setting; `secret` ones are encrypted with the master key.
    /// A secret one is sealed inside a write transaction with the catalog's
    /// current key (see `cipher_for_write`).
    pub async fn set_setting(&self, key: &str, value: &str, secret: bool) -> Result<()> {
        self.put_setting(key, value, secret, false).await.map(|_| ())
    }

    /// Store a setting only if it is absent (or empty); `true` when this
    /// call stored it. Two nodes racing to set the same first value agree
    /// on one winner.
    pub async fn set_setting_if_absent(&self, key: &str, value: &str, secret: bool) -> Result<bool> {
        self.put_setting(key, value, secret, true).await
    }

    async fn put_setting(&self, key: &str, value: &str, secret: bool, only_if_absent: bool) -> Result<bool> {
        check_key("setting key", key)?;
        let sql = format!(
            "INSERT INTO csal_settings (key, value, is_secret, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, is_secret = excluded.is_secret, \
             updated_at = excluded.updated_at{}",
            if only_if_absent { " WHERE csal_settings.value = ''" } else { "" }
        );
        let err = self.err("write setting");
        let mut tx = if secret { self.begin_write().await? } else { self.inner.pool.begin().await.map_err(&err)? };
        let stored = match secret {
            true => self.cipher_for_write(&mut tx).await?.seal(value, &setting_aad(key))?,
            false => value.to_owned(),
        };
        let done = sqlx::query(&sql)
            .bind(key)
            .bind(stored)
            .bind(i64::from(secret))
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        self.commit(tx, "write setting").await?;
        Ok(done.rows_affected() > 0)
    }

    /// Remove a setting (removing a missing one succeeds).
    pub async fn delete_setting(&self, key: &str) -> Result<()> {
        check_key("setting key", key)?;
        sqlx::query("DELETE FROM csal_settings WHERE key = $1")
            .bind(key)
            .execute(&self.inner.pool)
            .await
            .map_err(self.err("delete setting"))?;
        Ok(())
    }
}
