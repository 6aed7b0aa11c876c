//! HTTP calls to the Drive v3 API (reqwest; timeouts set here) and the
//! path → file id resolution that makes object ids path-like.
//!
//! Object ids are paths under the root folder (`camera5/seg-01J….mp4`), so
//! that prefixes and folders mean what they mean on every other provider.
//! A path is resolved one segment at a time with `files.list` and
//! `q = "'PARENT' in parents and name = 'SEG' and trashed = false"`;
//! folder ids are cached. Drive allows two items with one name in a folder,
//! so folders are created under one lock per instance (no duplicates from
//! our own concurrent writers), and object names carry a ULID.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use csal_core::{ExposeSecret, Result, StorageError};
use csal_oauth::{BearerHttp, OAuthSettings, TokenManager, TokenStore};

use crate::auth::{Auth, ServiceAccount};
use serde_json::{Value, json};

use crate::config::GDriveConfig;
use crate::error::classify;

pub(crate) const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
pub(crate) const FILE_FIELDS: &str = "id,name,mimeType,size,modifiedTime,md5Checksum";

pub(crate) struct DriveClient {
    /// Drive API calls with the bearer token of a user or a service account.
    pub api: BearerHttp<Auth>,
    api_url: String,
    pub root_id: String,
    all_drives: bool,
    folders: Mutex<HashMap<String, String>>,
    create_lock: tokio::sync::Mutex<()>,
}

impl DriveClient {
    pub fn new(config: &GDriveConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        // No redirects followed: a resumable upload's 308 is not a redirect.
        let ca_file = config.trusted_ca()?;
        let http = csal_http::HttpOptions::new(concat!("csal-gdrive/", env!("CARGO_PKG_VERSION")), config.timeouts()?)
            .ca_file(ca_file.clone())
            .build()?;
        let auth = match &config.service_account_json {
            Some(json) => Auth::ServiceAccount(Box::new(ServiceAccount::new(json.expose_secret())?)),
            None => Auth::User(Arc::new(
                TokenManager::new(
                    OAuthSettings {
                        token_url: config.token_url.clone().unwrap_or_else(|| crate::oauth::SPEC.token_url.to_owned()),
                        client_id: config.client_id.clone().unwrap_or_default(),
                        client_secret: config.client_secret.clone(),
                        refresh_token: config.refresh_token.clone(),
                        access_token: config.access_token.clone(),
                        expires_at: None,
                        scope: None,
                    },
                    store,
                )?
                .with_ca_file(ca_file.as_ref())?,
            )),
        };
        Ok(DriveClient {
            api: BearerHttp::new(http, Arc::new(auth), classify),
            api_url: config.api_url.trim_end_matches('/').to_owned(),
            root_id: config.root_folder_id.clone(),
            all_drives: config.shared_drive,
            folders: Mutex::new(HashMap::new()),
            create_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn files_url(&self) -> String {
        format!("{}/drive/v3/files", self.api_url)
    }

    pub fn about_url(&self) -> String {
        format!("{}/drive/v3/about", self.api_url)
    }

    /// Whether the instance lives on a shared drive.
    pub fn shared_drive(&self) -> bool {
        self.all_drives
    }

    pub fn upload_url(&self) -> String {
        format!("{}/upload/drive/v3/files", self.api_url)
    }

    /// Query parameters every call carries.
    pub fn common(&self) -> Vec<(&'static str, String)> {
        if self.all_drives { vec![("supportsAllDrives", "true".to_owned())] } else { Vec::new() }
    }

    /// `common` plus what files.list needs for shared drives.
    pub fn list_common(&self) -> Vec<(&'static str, String)> {
        let mut q = self.common();
        if self.all_drives {
            q.push(("includeItemsFromAllDrives", "true".to_owned()));
        }
        q
    }

    /// The child of `parent` called `name` (a folder or a non-folder).
    async fn find_child(&self, parent: &str, name: &str, folder: bool) -> Result<Option<Value>> {
        let op = if folder { "=" } else { "!=" };
        let q = format!(
            "'{}' in parents and name = '{}' and trashed = false and mimeType {op} '{FOLDER_MIME}'",
            escape(parent),
            escape(name)
        );
        let what = format!("look up '{name}'");
        let url = self.files_url();
        let mut query = self.list_common();
        query.extend([("q", q), ("pageSize", "10".to_owned()), ("fields", format!("files({FILE_FIELDS})"))]);
        let answer = self.api.json(&what, |http| http.get(&url).query(&query)).await?;
        Ok(answer["files"].as_array().and_then(|f| f.first()).cloned())
    }

    /// The id of folder `rel` (relative to the root), creating missing
    /// folders when `create`. `None` when it does not exist.
    pub async fn folder_id(&self, rel: &str, create: bool) -> Result<Option<String>> {
        let rel = rel.trim_matches('/');
        if rel.is_empty() {
            return Ok(Some(self.root_id.clone()));
        }
        let mut parent = self.root_id.clone();
        let mut path = String::new();
        for seg in rel.split('/') {
            path = if path.is_empty() { seg.to_owned() } else { format!("{path}/{seg}") };
            if let Some(id) = self.folders.lock().expect("lock").get(&path).cloned() {
                parent = id;
                continue;
            }
            let found = match self.find_child(&parent, seg, true).await? {
                Some(f) => f["id"].as_str().map(str::to_owned),
                None if create => {
                    let _guard = self.create_lock.lock().await;
                    match self.find_child(&parent, seg, true).await? {
                        Some(f) => f["id"].as_str().map(str::to_owned),
                        None => Some(self.create_folder(&parent, seg).await?),
                    }
                }
                None => None,
            };
            let Some(id) = found else { return Ok(None) };
            self.folders.lock().expect("lock").insert(path.clone(), id.clone());
            parent = id;
        }
        Ok(Some(parent))
    }

    async fn create_folder(&self, parent: &str, name: &str) -> Result<String> {
        let what = format!("create folder '{name}'");
        let url = self.files_url();
        let query = self.common();
        let body = json!({ "name": name, "mimeType": FOLDER_MIME, "parents": [parent] }).to_string();
        let made = self
            .api
            .json(&what, |http| {
                http.post(&url).query(&query).header("Content-Type", "application/json").body(body.clone())
            })
            .await?;
        made["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| StorageError::transient(format!("{what}: no id in the answer")))
    }

    /// Forget cached folder ids (after a folder turned out to be gone).
    pub fn forget_folders(&self) {
        self.folders.lock().expect("lock").clear();
    }

    /// The file behind an object id, or `NotFound`.
    pub async fn file(&self, object_id: &str) -> Result<Value> {
        let (dir, name) = object_id.rsplit_once('/').unwrap_or(("", object_id));
        let missing = || StorageError::not_found(format!("no object '{object_id}'"));
        let Some(parent) = self.folder_id(dir, false).await? else { return Err(missing()) };
        self.find_child(&parent, name, false).await?.ok_or_else(missing)
    }
}

/// Escape a string for a `q` literal (backslash and single quote).
pub(crate) fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

pub(crate) use csal_core::time_format::parse_rfc3339 as parse_time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_literals_are_escaped() {
        assert_eq!(escape("it's a\\b"), "it\\'s a\\\\b");
    }
}
