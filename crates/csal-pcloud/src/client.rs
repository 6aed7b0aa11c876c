//! pCloud HTTP JSON API calls (https://docs.pcloud.com/protocols/http_json_protocol/).
//!
//! Every method is `GET|POST|PUT https://<host>/<method>?params`; the answer
//! is JSON with a numeric `result` (0 = success). We always send
//! `timeformat=timestamp` so datetimes are Unix seconds.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use csal_core::{ExposeSecret, ObjectMeta, Result, SecretString, StorageError};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::{Credentials, Resolved};
use crate::error;

pub(crate) struct PcloudClient {
    pub http: reqwest::Client,
    pub api_url: String,
    pub root: String,
    pub part_size: usize,
    credentials: Credentials,
    /// Limit of one API call (an upload part included); downloads are
    /// bounded by the read timeout between chunks instead.
    request_timeout: Duration,
    /// `auth` token from `userinfo?getauth=1` (username/password login).
    auth: Mutex<Option<SecretString>>,
    /// Folders known to exist (created or seen), to skip repeat creates.
    pub known_folders: std::sync::Mutex<HashSet<String>>,
}

pub(crate) enum Body {
    None,
    Bytes(bytes::Bytes),
}

impl PcloudClient {
    pub fn new(r: Resolved) -> Result<Self> {
        let http = csal_http::HttpOptions::new(concat!("csal-pcloud/", env!("CARGO_PKG_VERSION")), r.timeouts)
            .ca_file(r.ca_file.clone())
            .build()?;
        Ok(PcloudClient {
            http,
            api_url: r.api_url,
            root: r.root,
            part_size: r.part_size,
            credentials: r.credentials,
            request_timeout: r.timeouts.request.expect("pcloud has request_timeout_secs"),
            auth: Mutex::new(None),
            known_folders: std::sync::Mutex::new(HashSet::new()),
        })
    }

    /// Full pCloud path of an object id.
    pub fn path_of(&self, object_id: &str) -> String {
        format!("{}/{}", self.root, object_id)
    }

    /// Log in with username/password (`userinfo?getauth=1`), cached.
    async fn auth_token(&self, force: bool) -> Result<Option<SecretString>> {
        let Credentials::Login { username, password } = &self.credentials else { return Ok(None) };
        let mut cached = self.auth.lock().await;
        if !force && let Some(t) = cached.as_ref() {
            return Ok(Some(t.clone()));
        }
        // POST form so the password never appears in a URL.
        let form = [
            ("getauth", "1"),
            ("logout", "1"),
            ("username", username.as_str()),
            ("password", password.expose_secret()),
        ];
        let resp = self
            .http
            .post(format!("{}/userinfo", self.api_url))
            .timeout(self.request_timeout)
            .form(&form)
            .send()
            .await
            .map_err(|e| error::from_transport("userinfo", e))?;
        let v = Self::json("userinfo", resp).await?;
        let token = v
            .get("auth")
            .and_then(Value::as_str)
            .ok_or_else(|| StorageError::auth("pcloud userinfo: no auth token in the answer"))?;
        let token = SecretString::from(token.to_owned());
        *cached = Some(token.clone());
        Ok(Some(token))
    }

    async fn json(method: &str, resp: reqwest::Response) -> Result<Value> {
        let status = resp.status();
        if !status.is_success() {
            return Err(error::from_status(method, status, resp.headers()));
        }
        let v: Value = csal_http::read_json(resp, &format!("pcloud {method}")).await?;
        match v.get("result").and_then(Value::as_i64) {
            Some(0) => Ok(v),
            Some(code) => Err(error::from_result(method, code, v.get("error").and_then(Value::as_str).unwrap_or(""))),
            None => Err(StorageError::permanent(format!("pcloud {method}: answer has no result code"))),
        }
    }

    /// Call `method` with `params`; logs in again once if the cached auth
    /// token was rejected.
    pub async fn call(&self, method: &str, params: &[(&str, String)], body: Body) -> Result<Value> {
        match self.call_once(method, params, &body, false).await {
            Err(e)
                if e.kind() == csal_core::ErrorKind::Auth && matches!(self.credentials, Credentials::Login { .. }) =>
            {
                self.call_once(method, params, &body, true).await
            }
            other => other,
        }
    }

    async fn call_once(&self, method: &str, params: &[(&str, String)], body: &Body, relogin: bool) -> Result<Value> {
        let auth = self.auth_token(relogin).await?;
        let url = format!("{}/{}", self.api_url, method);
        let mut req = match body {
            Body::None => self.http.get(url),
            Body::Bytes(b) => self.http.put(url).body(b.clone()),
        };
        let mut query: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        query.push(("timeformat", "timestamp"));
        if let Some(t) = auth.as_ref() {
            query.push(("auth", t.expose_secret()));
        }
        req = req.query(&query).timeout(self.request_timeout);
        if let Credentials::Token(t) = &self.credentials {
            req = req.bearer_auth(t.expose_secret());
        }
        let resp = req.send().await.map_err(|e| error::from_transport(method, e))?;
        Self::json(method, resp).await
    }

    /// GET a download link (`getfilelink` answer) with an optional Range.
    pub async fn download(&self, url: &str, range: Option<String>) -> Result<reqwest::Response> {
        let mut req = self.http.get(url);
        if let Some(r) = range {
            req = req.header(reqwest::header::RANGE, r);
        }
        let resp = req.send().await.map_err(|e| error::from_transport("download", e))?;
        if !resp.status().is_success() {
            return Err(error::from_status("download", resp.status(), resp.headers()));
        }
        Ok(resp)
    }

    /// A download URL for `path` (`getfilelink`: hosts + path). The link uses
    /// the scheme of the API URL (https in production, http on the fake).
    pub async fn file_link(&self, path: &str) -> Result<String> {
        let v = self.call("getfilelink", &[("path", path.to_owned())], Body::None).await?;
        let host = v
            .get("hosts")
            .and_then(Value::as_array)
            .and_then(|h| h.first())
            .and_then(Value::as_str)
            .ok_or_else(|| StorageError::permanent("pcloud getfilelink: no hosts in the answer"))?;
        let link_path = v
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| StorageError::permanent("pcloud getfilelink: no path in the answer"))?;
        let scheme = if self.api_url.starts_with("http://") { "http" } else { "https" };
        Ok(format!("{scheme}://{host}{link_path}"))
    }

    /// Metadata of the file at `path` (`stat`).
    pub async fn stat_path(&self, path: &str) -> Result<Value> {
        let v = self.call("stat", &[("path", path.to_owned())], Body::None).await?;
        v.get("metadata").cloned().ok_or_else(|| StorageError::permanent("pcloud stat: no metadata"))
    }

    /// Create every folder of `folder` (absolute path) that is missing.
    pub async fn ensure_folder(&self, folder: &str) -> Result<()> {
        if self.known_folders.lock().expect("lock").contains(folder) {
            return Ok(());
        }
        let mut current = String::new();
        for seg in folder.trim_matches('/').split('/').filter(|s| !s.is_empty()) {
            current.push('/');
            current.push_str(seg);
            if self.known_folders.lock().expect("lock").contains(&current) {
                continue;
            }
            self.call("createfolderifnotexists", &[("path", current.clone())], Body::None).await?;
            self.known_folders.lock().expect("lock").insert(current.clone());
        }
        Ok(())
    }
}

/// An `ObjectMeta` from pCloud file metadata (https://docs.pcloud.com/structures/metadata.html).
pub(crate) fn object_meta(object_id: String, m: &Value) -> ObjectMeta {
    let size = m.get("size").and_then(Value::as_u64).unwrap_or(0);
    let mut meta = ObjectMeta::new(object_id, size);
    meta.modified = m.get("modified").and_then(Value::as_u64).map(|s| UNIX_EPOCH + Duration::from_secs(s));
    meta.etag = m.get("hash").map(|h| h.to_string().trim_matches('"').to_owned());
    meta
}

#[allow(dead_code)]
pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
