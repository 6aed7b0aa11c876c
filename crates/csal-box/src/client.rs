//! HTTP calls to the Box API (reqwest; timeouts and redirect policy set
//! here) and the path → item id resolution that makes object ids path-like.
//!
//! Object ids are paths under the root folder (`camera5/seg-01J….mp4`), so
//! prefixes and folders mean what they mean on every other provider. Box
//! addresses items by id only, so a path is resolved one segment at a time
//! with the preflight check (`OPTIONS /files/content` with a name and a
//! parent): Box answers 409 `item_name_in_use` naming the item that holds
//! that name, or 200 when the name is free. That is one call per segment
//! whatever the folder's size (listing a folder of 10,000 segments to find
//! one name would be ten calls). Folder ids and recently used file ids are
//! cached; a cached id that turns out gone (404) is forgotten and the path
//! resolved again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use csal_core::{Result, StorageError};
use csal_oauth::{BearerHttp, OAuthSettings, TokenManager, TokenStore};
use serde_json::{Value, json};

use crate::config::{AuthMethod, BoxConfig};
use crate::error::{classify, conflict};

/// File fields asked for on stat and listing.
pub(crate) const FILE_FIELDS: &str = "type,id,name,size,modified_at,content_modified_at,sha1,etag";
/// File ids kept in the lookup cache before it is cleared.
const FILE_CACHE_MAX: usize = 10_000;

/// What a name inside a folder is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    File(String),
    Folder(String),
}

pub(crate) struct BoxClient {
    /// API calls: bearer token, no redirects followed (downloads answer 302
    /// to a short-lived URL that we fetch ourselves, without the token).
    pub api: BearerHttp<TokenManager>,
    api_url: String,
    upload_url: String,
    pub root_id: String,
    folders: Mutex<HashMap<String, String>>,
    files: Mutex<HashMap<String, String>>,
}

impl BoxClient {
    pub fn new(config: &BoxConfig, store: Option<Arc<dyn TokenStore>>) -> Result<Self> {
        let ca_file = config.trusted_ca()?;
        let http = csal_http::HttpOptions::new(concat!("csal-box/", env!("CARGO_PKG_VERSION")), config.timeouts()?)
            .ca_file(ca_file.clone())
            .build()?;
        let token_url = config.token_url.clone().unwrap_or_else(|| crate::oauth::SPEC.token_url.to_owned());
        let tokens = match config.auth()? {
            AuthMethod::OAuth => TokenManager::new(
                OAuthSettings {
                    token_url,
                    client_id: config.client_id.clone(),
                    client_secret: config.client_secret.clone(),
                    refresh_token: config.refresh_token.clone(),
                    access_token: config.access_token.clone(),
                    expires_at: None,
                    scope: None,
                },
                store,
            )?
            .with_refresh_token_expiry(
                csal_oauth::parse_refresh_token_expiry(config.refresh_token_expires_at.as_deref())?,
                crate::oauth::SPEC.refresh_token_lifetime,
            ),
            AuthMethod::ClientCredentials => TokenManager::client_credentials(
                token_url,
                config.client_id.clone(),
                config.client_secret.clone().expect("validated"),
                vec![
                    ("box_subject_type".to_owned(), config.box_subject_type.clone().unwrap_or_default()),
                    ("box_subject_id".to_owned(), config.box_subject_id.clone().unwrap_or_default()),
                ],
            )?,
        }
        .with_ca_file(ca_file.as_ref())?;
        Ok(BoxClient {
            api: BearerHttp::new(http, Arc::new(tokens), classify),
            api_url: config.api_url.trim_end_matches('/').to_owned(),
            upload_url: config.upload_url.trim_end_matches('/').to_owned(),
            root_id: config.root_folder_id.clone(),
            folders: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_url)
    }

    pub fn upload(&self, path: &str) -> String {
        format!("{}{path}", self.upload_url)
    }

    /// What holds `name` in folder `parent` (preflight check), or `None`.
    /// `Err(NotFound)` when the folder itself is gone.
    pub async fn lookup(&self, parent: &str, name: &str) -> Result<Option<Entry>> {
        let what = format!("look up '{name}'");
        let url = self.url("/files/content");
        let body = json!({ "name": name, "parent": { "id": parent } }).to_string();
        let answer = self
            .api
            .send(&what, |http| {
                http.request(reqwest::Method::OPTIONS, &url)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
            })
            .await?;
        match answer {
            Ok(_) => Ok(None),
            Err(e) if e.status.as_u16() == 409 => match conflict(&e).as_ref().map(entry_of) {
                Some(Some(entry)) => Ok(Some(entry)),
                _ => Err(StorageError::transient(format!("{what}: Box reported a conflict without naming the item"))
                    .with_source(e)),
            },
            Err(e) => Err(classify(e, &what)),
        }
    }

    /// The id of folder `rel` (relative to the root), creating missing
    /// folders when `create`. `None` when it does not exist.
    pub async fn folder_id(&self, rel: &str, create: bool) -> Result<Option<String>> {
        match self.folder_id_once(rel, create).await {
            // A cached parent was deleted meanwhile: forget and walk again.
            Err(e) if e.is_not_found() && self.forget_folders() => self.folder_id_once(rel, create).await,
            other => other,
        }
    }

    async fn folder_id_once(&self, rel: &str, create: bool) -> Result<Option<String>> {
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
            let id = match self.lookup(&parent, seg).await? {
                Some(Entry::Folder(id)) => id,
                Some(Entry::File(_)) if create => {
                    return Err(StorageError::already_exists(format!("folder '{path}': a file has that name")));
                }
                Some(Entry::File(_)) | None if !create => return Ok(None),
                _ => self.create_folder(&parent, seg, &path).await?,
            };
            self.folders.lock().expect("lock").insert(path.clone(), id.clone());
            parent = id;
        }
        Ok(Some(parent))
    }

    /// `POST /folders`; a 409 (another writer made it first) names the
    /// existing folder, which is reused.
    async fn create_folder(&self, parent: &str, name: &str, path: &str) -> Result<String> {
        let what = format!("create folder '{path}'");
        let url = self.url("/folders?fields=id,type");
        let body = json!({ "name": name, "parent": { "id": parent } }).to_string();
        let answer = self
            .api
            .send(&what, |http| http.post(&url).header("Content-Type", "application/json").body(body.clone()))
            .await?;
        match answer {
            Ok(resp) => csal_http::read_json::<Value>(resp, &what)
                .await?
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| StorageError::transient(format!("{what}: no id in Box's answer"))),
            Err(e) if e.status.as_u16() == 409 => match conflict(&e).as_ref().map(entry_of) {
                Some(Some(Entry::Folder(id))) => Ok(id),
                _ => Err(classify(e, &what)),
            },
            Err(e) => Err(classify(e, &what)),
        }
    }

    /// Forget cached folder ids; `true` when there were any.
    pub fn forget_folders(&self) -> bool {
        let mut folders = self.folders.lock().expect("lock");
        let had = !folders.is_empty();
        folders.clear();
        had
    }

    pub fn remember_file(&self, object_id: &str, file_id: &str) {
        let mut files = self.files.lock().expect("lock");
        if files.len() >= FILE_CACHE_MAX {
            files.clear();
        }
        files.insert(object_id.to_owned(), file_id.to_owned());
    }

    pub fn forget_file(&self, object_id: &str) {
        self.files.lock().expect("lock").remove(object_id);
    }

    pub fn cached_file(&self, object_id: &str) -> Option<String> {
        self.files.lock().expect("lock").get(object_id).cloned()
    }

    /// The Box file id behind an object id, or `NotFound`.
    pub async fn file_id(&self, object_id: &str) -> Result<String> {
        if let Some(id) = self.cached_file(object_id) {
            return Ok(id);
        }
        let (dir, name) = object_id.rsplit_once('/').unwrap_or(("", object_id));
        let missing = || StorageError::not_found(format!("no object '{object_id}'"));
        let Some(parent) = self.folder_id(dir, false).await? else { return Err(missing()) };
        let found = match self.lookup(&parent, name).await {
            Err(e) if e.is_not_found() && self.forget_folders() => {
                let Some(parent) = self.folder_id(dir, false).await? else { return Err(missing()) };
                self.lookup(&parent, name).await?
            }
            other => other?,
        };
        match found {
            Some(Entry::File(id)) => {
                self.remember_file(object_id, &id);
                Ok(id)
            }
            Some(Entry::Folder(_)) => Err(StorageError::not_found(format!("'{object_id}' is a folder, not an object"))),
            None => Err(missing()),
        }
    }
}

/// A file or folder reference (`{"type": "file", "id": "..."}`).
pub(crate) fn entry_of(item: &Value) -> Option<Entry> {
    let id = item.get("id").and_then(Value::as_str)?.to_owned();
    match item.get("type").and_then(Value::as_str)? {
        "file" => Some(Entry::File(id)),
        "folder" => Some(Entry::Folder(id)),
        _ => None,
    }
}

pub(crate) use csal_core::time_format::parse_rfc3339 as parse_time;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_times_with_offsets_parse() {
        let utc = parse_time("2025-11-29T09:51:11Z").unwrap();
        assert_eq!(utc.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(), 1_764_409_871);
        let pacific = parse_time("2025-11-29T01:51:11-08:00").unwrap();
        assert_eq!(pacific, utc);
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn entries_are_typed() {
        assert_eq!(entry_of(&json!({"type": "folder", "id": "12"})), Some(Entry::Folder("12".into())));
        assert_eq!(entry_of(&json!({"type": "file", "id": "13"})), Some(Entry::File("13".into())));
        assert_eq!(entry_of(&json!({"type": "web_link", "id": "14"})), None);
    }
}
