//! TEMPORARY stub of the catalog API contract (JSON file, no encryption).
//! Deleted before merging branch `catalog`, which brings the real crate.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use csal_core::{InstanceDefinition, ReloadSummary, Result, SecretString, StorageError, StorageRouter};
use serde::{Deserialize, Serialize};

pub enum MasterKey {
    FromEnvOrFile(PathBuf),
    Explicit(SecretString),
}

#[derive(Default, Serialize, Deserialize, Clone)]
struct State {
    modules: Vec<Row>,
    policies: Vec<(String, Vec<String>)>,
    settings: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Row {
    id: String,
    name: String,
    label: Option<String>,
    provider_type: String,
    is_enabled: bool,
    config: serde_json::Value,
}

#[derive(Clone)]
pub struct Catalog {
    path: PathBuf,
    state: Arc<Mutex<State>>,
    router: Arc<StorageRouter>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModuleRecord {
    pub id: String,
    pub name: String,
    pub label: Option<String>,
    pub provider_type: String,
    pub is_enabled: bool,
    pub config: serde_json::Value,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

#[derive(Debug, Clone)]
pub struct NewModule {
    pub name: String,
    pub label: Option<String>,
    pub provider_type: String,
    pub is_enabled: bool,
    pub config: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct ModuleUpdate {
    pub label: Option<Option<String>>,
    pub config: Option<serde_json::Value>,
    pub is_enabled: Option<bool>,
}

fn io(e: impl std::fmt::Display) -> StorageError {
    StorageError::permanent(format!("catalog: {e}"))
}

impl Catalog {
    pub async fn open(url: &str, _key: MasterKey) -> Result<Catalog> {
        let path = PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url));
        let state: State = match std::fs::read(&path) {
            Ok(b) if !b.is_empty() => serde_json::from_slice(&b).map_err(io)?,
            _ => State::default(),
        };
        let c = Catalog {
            path,
            state: Arc::new(Mutex::new(state)),
            router: Arc::new(StorageRouter::from_definitions(&[])),
        };
        c.save()?;
        c.reload_router().await?;
        Ok(c)
    }
    fn save(&self) -> Result<()> {
        let s = self.state.lock().unwrap().clone();
        std::fs::write(&self.path, serde_json::to_vec(&s).unwrap()).map_err(io)
    }
    fn rec(r: &Row) -> ModuleRecord {
        let config = match csal_core::find_provider(&r.provider_type) {
            Ok(reg) => csal_core::mask_config(reg.fields, &r.config),
            Err(_) => serde_json::json!({}),
        };
        ModuleRecord {
            id: r.id.clone(),
            name: r.name.clone(),
            label: r.label.clone(),
            provider_type: r.provider_type.clone(),
            is_enabled: r.is_enabled,
            config,
            created_at: SystemTime::now(),
            updated_at: SystemTime::now(),
        }
    }
    fn find(&self, s: &State, key: &str) -> Result<usize> {
        s.modules
            .iter()
            .position(|m| m.name == key || m.id == key)
            .ok_or_else(|| StorageError::not_found(format!("no storage module named '{key}'")))
    }
    pub async fn list_modules(&self) -> Result<Vec<ModuleRecord>> {
        Ok(self.state.lock().unwrap().modules.iter().map(Self::rec).collect())
    }
    pub async fn get_module(&self, key: &str) -> Result<ModuleRecord> {
        let s = self.state.lock().unwrap();
        let i = self.find(&s, key)?;
        Ok(Self::rec(&s.modules[i]))
    }
    pub async fn create_module(&self, new: NewModule) -> Result<ModuleRecord> {
        let reg = csal_core::find_provider(&new.provider_type)?;
        reg.check_config(&new.config)?;
        let r = {
            let mut s = self.state.lock().unwrap();
            if s.modules.iter().any(|m| m.name == new.name) {
                return Err(StorageError::already_exists(format!("a module named '{}' exists", new.name)));
            }
            let r = Row {
                id: ulid::Ulid::new().to_string(),
                name: new.name,
                label: new.label,
                provider_type: new.provider_type,
                is_enabled: new.is_enabled,
                config: new.config,
            };
            s.modules.push(r.clone());
            r
        };
        self.save()?;
        self.reload_router().await?;
        Ok(Self::rec(&r))
    }
    pub async fn update_module(&self, key: &str, update: ModuleUpdate) -> Result<ModuleRecord> {
        let r = {
            let mut s = self.state.lock().unwrap();
            let i = self.find(&s, key)?;
            let m = &mut s.modules[i];
            if let Some(l) = update.label {
                m.label = l;
            }
            if let Some(e) = update.is_enabled {
                m.is_enabled = e;
            }
            if let Some(mut c) = update.config {
                let reg = csal_core::find_provider(&m.provider_type)?;
                if let (Some(map), Some(old)) = (c.as_object_mut(), m.config.as_object()) {
                    for f in reg.fields.iter().filter(|f| f.kind.is_secret()) {
                        let blank = map.get(f.key).is_none_or(|v| v.is_null() || v.as_str() == Some(""));
                        if blank {
                            if let Some(v) = old.get(f.key) {
                                map.insert(f.key.to_owned(), v.clone());
                            }
                        }
                    }
                }
                reg.check_config(&c)?;
                m.config = c;
            }
            m.clone()
        };
        self.save()?;
        self.reload_router().await?;
        Ok(Self::rec(&r))
    }
    pub async fn set_enabled(&self, key: &str, enabled: bool) -> Result<ModuleRecord> {
        self.update_module(key, ModuleUpdate { is_enabled: Some(enabled), ..Default::default() }).await
    }
    pub async fn delete_module(&self, key: &str) -> Result<()> {
        {
            let mut s = self.state.lock().unwrap();
            let i = self.find(&s, key)?;
            s.modules.remove(i);
        }
        self.save()?;
        self.reload_router().await?;
        Ok(())
    }
    pub fn router(&self) -> Arc<StorageRouter> {
        self.router.clone()
    }
    pub async fn reload_router(&self) -> Result<ReloadSummary> {
        let defs: Vec<InstanceDefinition> = self
            .state
            .lock()
            .unwrap()
            .modules
            .iter()
            .map(|m| InstanceDefinition {
                id: m.id.clone(),
                name: m.name.clone(),
                label: m.label.clone(),
                provider_type: m.provider_type.clone(),
                is_enabled: m.is_enabled,
                config_json: m.config.to_string(),
                created_at: None,
                updated_at: None,
            })
            .collect();
        Ok(self.router.reload(&defs))
    }
    pub async fn set_policy(&self, camera_id: &str, targets: Vec<String>) -> Result<()> {
        {
            let mut s = self.state.lock().unwrap();
            s.policies.retain(|(c, _)| c != camera_id);
            s.policies.push((camera_id.to_owned(), targets));
        }
        self.save()
    }
    pub async fn get_policy(&self, camera_id: &str) -> Result<Vec<String>> {
        let s = self.state.lock().unwrap();
        Ok(s.policies.iter().find(|(c, _)| c == camera_id).map(|(_, t)| t.clone()).unwrap_or_default())
    }
    pub async fn list_policies(&self) -> Result<Vec<(String, Vec<String>)>> {
        Ok(self.state.lock().unwrap().policies.clone())
    }
    pub async fn delete_policy(&self, camera_id: &str) -> Result<()> {
        self.state.lock().unwrap().policies.retain(|(c, _)| c != camera_id);
        self.save()
    }
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        let s = self.state.lock().unwrap();
        Ok(s.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
    }
    pub async fn set_setting(&self, key: &str, value: &str, _secret: bool) -> Result<()> {
        {
            let mut s = self.state.lock().unwrap();
            s.settings.retain(|(k, _)| k != key);
            s.settings.push((key.to_owned(), value.to_owned()));
        }
        self.save()
    }
}
