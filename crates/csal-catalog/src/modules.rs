//! Module CRUD: the `storage_modules` rows, their sealed secrets, and the
//! definitions the router is built from.

use csal_core::{ErrorKind, InstanceDefinition, Result, StorageError, find_provider, secret::MASK};
use csal_sql::{Backend, map_sqlx};
use sqlx::{AnyConnection, Row};

use crate::crypto::Cipher;
use crate::records::{check_label, ms_to_time, now_ms};
use crate::{Catalog, ENC, MODULE_COLS, ModuleRecord, ModuleUpdate, NewModule, check_module_name, policy};

/// A `storage_modules` row as stored (secret fields sealed).
pub(crate) struct StoredRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) label: Option<String>,
    pub(crate) provider_type: String,
    pub(crate) is_enabled: bool,
    pub(crate) config: serde_json::Value,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

pub(crate) fn module_aad(id: &str, field: &str) -> String {
    format!("csal:module:{id}:{field}")
}

impl Catalog {
    // ---------------------------------------------------------------- modules

    /// Every instance, by name; secrets masked.
    pub async fn list_modules(&self) -> Result<Vec<ModuleRecord>> {
        let mut conn = self.conn().await?;
        let rows = fetch_rows(&mut conn, self.inner.backend).await?;
        Ok(rows.iter().map(masked_record).collect())
    }

    /// One instance by name or id; secrets masked.
    pub async fn get_module(&self, name_or_id: &str) -> Result<ModuleRecord> {
        let mut conn = self.conn().await?;
        let row = find_row(&mut conn, self.inner.backend, name_or_id).await?;
        Ok(masked_record(&row))
    }

    /// Add an instance after checking its name and config.
    pub async fn create_module(&self, new: NewModule) -> Result<ModuleRecord> {
        check_module_name(&new.name)?;
        check_label(new.label.as_deref())?;
        let registration = find_provider(&new.provider_type)?;
        let id = ulid::Ulid::new().to_string();
        check_by_building(registration, &id, &new.name, &new.config)?;
        let now = now_ms();
        let err = self.err("create storage module");
        let mut tx = self.begin_write().await?;
        let cipher = self.cipher_for_write(&mut tx).await?;
        let sealed = seal_config(&cipher, &id, registration.fields, &new.config)?;
        let config_json = serde_json::to_string(&sealed)
            .map_err(|_| StorageError::invalid_config("config cannot be serialised as JSON"))?;
        let exists = sqlx::query("SELECT id FROM storage_modules WHERE name = $1")
            .bind(&new.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(&err)?;
        if exists.is_some() {
            return Err(duplicate(&new.name));
        }
        sqlx::query(
            "INSERT INTO storage_modules (id, name, label, provider_type, is_enabled, config_json, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&new.name)
        .bind(new.label.clone().filter(|l| !l.trim().is_empty()))
        .bind(&new.provider_type)
        .bind(i64::from(new.is_enabled))
        .bind(&config_json)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match map_sqlx(e, self.inner.backend, "create storage module") {
            e if e.kind() == ErrorKind::AlreadyExists => duplicate(&new.name),
            e => e,
        })?;
        self.commit(tx, "create storage module").await?;
        tracing::info!(instance = %new.name, provider = %new.provider_type, "storage module created");
        self.after_change().await;
        self.get_module(&id).await
    }

    /// Change label, config and/or enabled flag (see [`ModuleUpdate`] for
    /// how secret fields are kept).
    pub async fn update_module(&self, name_or_id: &str, update: ModuleUpdate) -> Result<ModuleRecord> {
        if let Some(label) = &update.label {
            check_label(label.as_deref())?;
        }
        let backend = self.inner.backend;
        let err = self.err("update storage module");
        let mut tx = self.begin_write().await?;
        let row = find_row(&mut tx, backend, name_or_id).await?;
        let config_json = match &update.config {
            None => None,
            Some(new_config) => {
                let registration = find_provider(&row.provider_type)?;
                refuse_secrets_to_a_new_target(&row, registration.fields, new_config)?;
                let cipher = self.cipher_for_write(&mut tx).await?;
                let merged = merge_secrets(&cipher, &row, registration.fields, new_config)?;
                check_by_building(registration, &row.id, &row.name, &merged)?;
                let sealed = seal_config(&cipher, &row.id, registration.fields, &merged)?;
                Some(
                    serde_json::to_string(&sealed)
                        .map_err(|_| StorageError::invalid_config("config cannot be serialised as JSON"))?,
                )
            }
        };
        let label = update.label.clone().unwrap_or(row.label.clone()).filter(|l| !l.trim().is_empty());
        let enabled = update.is_enabled.unwrap_or(row.is_enabled);
        let config_json = match config_json {
            Some(c) => c,
            None => serde_json::to_string(&row.config).unwrap_or_else(|_| "{}".to_owned()),
        };
        let updated_at = now_ms().max(row.updated_at + 1);
        sqlx::query(
            "UPDATE storage_modules SET label = $1, is_enabled = $2, config_json = $3, updated_at = $4 WHERE id = $5",
        )
        .bind(label)
        .bind(i64::from(enabled))
        .bind(config_json)
        .bind(updated_at)
        .bind(&row.id)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        self.commit(tx, "update storage module").await?;
        tracing::info!(instance = %row.name, "storage module updated");
        self.after_change().await;
        self.get_module(&row.id).await
    }

    /// Merge values a module changed itself (a refreshed OAuth token) into
    /// an instance's stored config, sealing secret fields. Every key must be
    /// a field of the provider's config spec. This is the catalog's
    /// [`csal_core::ConfigSink`], which the router hands to each instance.
    pub async fn save_config_changes(
        &self,
        name_or_id: &str,
        changes: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let backend = self.inner.backend;
        let mut tx = self.begin_write().await?;
        let row = find_row(&mut tx, backend, name_or_id).await?;
        let registration = find_provider(&row.provider_type)?;
        if let Some(key) = changes.keys().find(|k| !registration.fields.iter().any(|f| f.key == k.as_str())) {
            return Err(StorageError::invalid_input(format!(
                "'{key}' is not a config field of provider '{}'",
                row.provider_type
            )));
        }
        let cipher = self.cipher_for_write(&mut tx).await?;
        let mut plain = open_config(&cipher, &row)?;
        let Some(map) = plain.as_object_mut() else {
            return Err(StorageError::invalid_config(format!("stored config of '{}' is not an object", row.name)));
        };
        map.extend(changes);
        let sealed = seal_config(&cipher, &row.id, registration.fields, &plain)?;
        let config_json = serde_json::to_string(&sealed)
            .map_err(|_| StorageError::invalid_config("config cannot be serialised as JSON"))?;
        sqlx::query("UPDATE storage_modules SET config_json = $1, updated_at = $2 WHERE id = $3")
            .bind(config_json)
            .bind(now_ms().max(row.updated_at + 1))
            .bind(&row.id)
            .execute(&mut *tx)
            .await
            .map_err(self.err("save storage module config changes"))?;
        self.commit(tx, "save storage module config changes").await?;
        tracing::info!(instance = %row.name, "storage module saved config changes it made itself");
        self.after_change().await;
        Ok(())
    }

    /// Enable or disable an instance.
    pub async fn set_enabled(&self, name_or_id: &str, enabled: bool) -> Result<ModuleRecord> {
        self.update_module(name_or_id, ModuleUpdate { is_enabled: Some(enabled), ..Default::default() }).await
    }

    /// Delete an instance. Refused while a camera policy names it.
    pub async fn delete_module(&self, name_or_id: &str) -> Result<()> {
        let backend = self.inner.backend;
        let err = self.err("delete storage module");
        let mut tx = self.begin_write().await?;
        let row = find_row(&mut tx, backend, name_or_id).await?;
        let users = policy::cameras_using(&mut tx, backend, &row.name).await?;
        if !users.is_empty() {
            return Err(StorageError::invalid_input(format!(
                "storage module '{}' is a target of the storage policy of camera(s) {}; change those policies first",
                row.name,
                users.join(", ")
            )));
        }
        sqlx::query("DELETE FROM storage_modules WHERE id = $1").bind(&row.id).execute(&mut *tx).await.map_err(&err)?;
        self.commit(tx, "delete storage module").await?;
        tracing::info!(instance = %row.name, "storage module deleted");
        self.after_change().await;
        Ok(())
    }

    /// Every instance with its config decrypted, for a router.
    /// Keep these private: they hold secrets in clear.
    pub async fn definitions(&self) -> Result<Vec<InstanceDefinition>> {
        let mut conn = self.conn().await?;
        let rows = fetch_rows(&mut conn, self.inner.backend).await?;
        drop(conn);
        let cipher = self.cipher();
        let definitions = rows
            .into_iter()
            .map(|row| {
                // One row that cannot be opened is that instance offline,
                // never the whole catalog.
                let (config_json, load_error) = match open_config(&cipher, &row) {
                    Ok(plain) => (plain.to_string(), None),
                    Err(e) => {
                        tracing::warn!(instance = %row.name, error = %e, "storage module cannot be loaded");
                        (masked_record(&row).config.to_string(), Some((e.kind(), e.message().to_owned())))
                    }
                };
                let mut def = InstanceDefinition::new(&row.name, &row.provider_type, serde_json::Value::Null);
                (def.id, def.label, def.is_enabled, def.config_json) = (row.id, row.label, row.is_enabled, config_json);
                def.created_at = Some(ms_to_time(row.created_at));
                def.updated_at = Some(ms_to_time(row.updated_at));
                def.load_error = load_error;
                def
            })
            .collect();
        Ok(definitions)
    }
}

/// The spec check, then the provider's own checks: its factory parses the
/// typed config (no network work; the module is dropped at once). Only
/// config errors refuse the change; a factory failing for another reason
/// (say a file it needs is missing on this node) is saved and the instance
/// shows as offline with the reason.
pub(crate) fn check_by_building(
    registration: &csal_core::ProviderRegistration,
    id: &str,
    name: &str,
    config: &serde_json::Value,
) -> Result<()> {
    registration.check_config(config)?;
    let ctx = csal_core::InstanceContext::new(id, name, registration.provider_type);
    let secrets = csal_core::secret::secret_values(registration.fields, config);
    match registration.build(&ctx, config) {
        Ok(_module) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::InvalidConfig | ErrorKind::InvalidInput) => Err(e.redact(&secrets)),
        Err(_) => Ok(()),
    }
}

pub(crate) fn duplicate(name: &str) -> StorageError {
    StorageError::already_exists(format!("a storage module named '{name}' already exists; pick another name"))
}

pub(crate) fn parse_row(row: &sqlx::any::AnyRow, backend: Backend) -> Result<StoredRow> {
    let err = |e| map_sqlx(e, backend, "read storage module row");
    let config_text: String = row.try_get("config_json").map_err(err)?;
    let id: String = row.try_get("id").map_err(err)?;
    let config = serde_json::from_str(&config_text)
        .map_err(|_| StorageError::invalid_config(format!("stored config_json of module '{id}' is not valid JSON")))?;
    Ok(StoredRow {
        name: row.try_get("name").map_err(err)?,
        label: row.try_get("label").map_err(err)?,
        provider_type: row.try_get("provider_type").map_err(err)?,
        is_enabled: row.try_get::<i64, _>("is_enabled").map_err(err)? != 0,
        config,
        created_at: row.try_get("created_at").map_err(err)?,
        updated_at: row.try_get("updated_at").map_err(err)?,
        id,
    })
}

pub(crate) async fn fetch_rows(conn: &mut AnyConnection, backend: Backend) -> Result<Vec<StoredRow>> {
    let rows = sqlx::query(&format!("SELECT {MODULE_COLS} FROM storage_modules ORDER BY name"))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| map_sqlx(e, backend, "list storage modules"))?;
    rows.iter().map(|r| parse_row(r, backend)).collect()
}

pub(crate) async fn find_row(conn: &mut AnyConnection, backend: Backend, name_or_id: &str) -> Result<StoredRow> {
    for column in ["name", "id"] {
        let row = sqlx::query(&format!("SELECT {MODULE_COLS} FROM storage_modules WHERE {column} = $1"))
            .bind(name_or_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| map_sqlx(e, backend, "find storage module"))?;
        if let Some(row) = row {
            return parse_row(&row, backend);
        }
    }
    Err(StorageError::not_found(format!("no storage module with name or id '{name_or_id}'")))
}

pub(crate) fn is_sealed(v: &serde_json::Value) -> Option<&str> {
    v.as_object().filter(|o| o.len() == 1).and_then(|o| o.get(ENC)).and_then(|s| s.as_str())
}

/// Stored config → shown config: sealed values and spec secrets masked.
pub(crate) fn masked_record(row: &StoredRow) -> ModuleRecord {
    let mut config = row.config.clone();
    if let Some(map) = config.as_object_mut() {
        for v in map.values_mut() {
            if is_sealed(v).is_some() {
                *v = serde_json::Value::String(MASK.to_owned());
            }
        }
    }
    if let Ok(reg) = find_provider(&row.provider_type) {
        config = csal_core::mask_config(reg.fields, &csal_core::spec::current_keys(reg.fields, &config));
    }
    ModuleRecord {
        id: row.id.clone(),
        name: row.name.clone(),
        label: row.label.clone(),
        provider_type: row.provider_type.clone(),
        is_enabled: row.is_enabled,
        config,
        created_at: ms_to_time(row.created_at),
        updated_at: ms_to_time(row.updated_at),
    }
}

/// Plain config → stored config: every non-empty secret field sealed.
pub(crate) fn seal_config(
    cipher: &Cipher,
    id: &str,
    fields: &[csal_core::ConfigField],
    plain: &serde_json::Value,
) -> Result<serde_json::Value> {
    let mut sealed = plain.clone();
    if let Some(map) = sealed.as_object_mut() {
        for field in fields.iter().filter(|f| f.kind.is_secret()) {
            if let Some(v) = map.get_mut(field.key)
                && let Some(s) = v.as_str().filter(|s| !s.is_empty())
            {
                let enc = cipher.seal(s, &module_aad(id, field.key))?;
                *v = serde_json::json!({ ENC: enc });
            }
        }
    }
    Ok(sealed)
}

/// Stored config → plain config (every sealed value opened).
pub(crate) fn open_config(cipher: &Cipher, row: &StoredRow) -> Result<serde_json::Value> {
    let mut plain = row.config.clone();
    if let Some(map) = plain.as_object_mut() {
        for (key, v) in map.iter_mut() {
            if let Some(enc) = is_sealed(v) {
                let what = format!("field '{key}' of storage module '{}'", row.name);
                *v = serde_json::Value::String(cipher.open(enc, &module_aad(&row.id, key), &what)?);
            }
        }
    }
    Ok(plain)
}

/// Re-seal for key rotation: fields sealed before stay sealed (even if the
/// spec no longer calls them secret), spec secrets get sealed.
pub(crate) fn reseal_config(
    cipher: &Cipher,
    row: &StoredRow,
    fields: &[csal_core::ConfigField],
    plain: &serde_json::Value,
) -> Result<serde_json::Value> {
    let mut out = seal_config(cipher, &row.id, fields, plain)?;
    if let (Some(map), Some(stored)) = (out.as_object_mut(), row.config.as_object()) {
        for (key, v) in map.iter_mut() {
            if stored.get(key).and_then(is_sealed).is_some()
                && is_sealed(v).is_none()
                && let Some(s) = v.as_str()
            {
                *v = serde_json::json!({ ENC: cipher.seal(s, &module_aad(&row.id, key))? });
            }
        }
    }
    Ok(out)
}

/// A secret left empty in an update is kept from the stored row; that must
/// not let an admin send it somewhere new. When a field that says where
/// credentials go (`credential_target` in the spec: a URL, host, token
/// endpoint, trust switch) changes, every stored secret the update would
/// keep has to be entered again (or removed), so an API token alone cannot
/// redirect a stored password to a host of its choice.
pub(crate) fn refuse_secrets_to_a_new_target(
    row: &StoredRow,
    fields: &[csal_core::ConfigField],
    new_config: &serde_json::Value,
) -> Result<()> {
    let (Some(new), Some(old)) = (new_config.as_object(), row.config.as_object()) else { return Ok(()) };
    let value = |map: &serde_json::Map<String, serde_json::Value>, f: &csal_core::ConfigField| {
        f.value_in(map).filter(|v| !csal_core::spec::is_blank(v)).cloned()
    };
    let moved: Vec<&str> =
        fields.iter().filter(|f| f.credential_target && value(new, f) != value(old, f)).map(|f| f.key).collect();
    if moved.is_empty() {
        return Ok(());
    }
    let kept: Vec<&str> = fields
        .iter()
        .filter(|f| f.kind.is_secret() && value(old, f).is_some())
        .filter(|f| match new.get(f.key) {
            None => true,
            Some(v) => v.as_str().is_some_and(|s| s.is_empty() || s == MASK),
        })
        .map(|f| f.key)
        .collect();
    if kept.is_empty() {
        return Ok(());
    }
    let list = |keys: &[&str]| keys.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
    Err(StorageError::invalid_config(format!(
        "storage module '{}': changing {} changes where its credentials go; enter {} again (or clear {})",
        row.name,
        list(&moved),
        list(&kept),
        if kept.len() == 1 { "it" } else { "them" }
    )))
}

/// The config of an update with kept secrets filled in from the stored row.
pub(crate) fn merge_secrets(
    cipher: &Cipher,
    row: &StoredRow,
    fields: &[csal_core::ConfigField],
    new_config: &serde_json::Value,
) -> Result<serde_json::Value> {
    let mut merged = new_config.clone();
    let Some(map) = merged.as_object_mut() else { return Ok(merged) };
    for field in fields.iter().filter(|f| f.kind.is_secret()) {
        match map.get(field.key) {
            Some(serde_json::Value::Null) => {
                map.remove(field.key);
            }
            None => {
                if let Some(old) = row.config.get(field.key) {
                    map.insert(field.key.to_owned(), old_plain(cipher, row, field.key, old)?);
                }
            }
            Some(v) if v.as_str().is_some_and(|s| s.is_empty() || s == MASK) => match row.config.get(field.key) {
                Some(old) => {
                    let old = old_plain(cipher, row, field.key, old)?;
                    map.insert(field.key.to_owned(), old);
                }
                None => {
                    map.remove(field.key);
                }
            },
            Some(_) => {}
        }
    }
    Ok(merged)
}

pub(crate) fn old_plain(
    cipher: &Cipher,
    row: &StoredRow,
    key: &str,
    old: &serde_json::Value,
) -> Result<serde_json::Value> {
    match is_sealed(old) {
        Some(enc) => {
            let what = format!("field '{key}' of storage module '{}'", row.name);
            Ok(serde_json::Value::String(cipher.open(enc, &module_aad(&row.id, key), &what)?))
        }
        None => Ok(old.clone()),
    }
}
