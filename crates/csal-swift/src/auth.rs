//! Tokens: TempAuth v1.0, Keystone v3 (password) and Rackspace identity
//! v2.0 (API key). The session (token + storage URL) is cached, refreshed a
//! minute before it expires, and on a 401 from Swift; refreshes are
//! single-flight (one request however many callers need a token).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use csal_core::{ExposeSecret, Result, StorageError};
use serde_json::{Value, json};
use tokio::sync::{Mutex, RwLock};

use crate::config::{AuthSpec, ProjectScope};
use crate::error::{status_error, transport_error};

#[derive(Clone)]
pub(crate) struct Session {
    pub token: Arc<str>,
    /// e.g. `https://swift.example.com/v1/AUTH_project` (no trailing slash).
    pub storage_url: Arc<str>,
    pub expires: Option<SystemTime>,
}

impl Session {
    fn fresh(&self) -> bool {
        self.expires.is_none_or(|e| e > SystemTime::now() + Duration::from_secs(60))
    }
}

pub(crate) struct Authenticator {
    spec: AuthSpec,
    http: reqwest::Client,
    session: RwLock<Option<Session>>,
    refresh: Mutex<()>,
}

impl Authenticator {
    pub fn new(spec: AuthSpec, http: reqwest::Client) -> Self {
        Authenticator { spec, http, session: RwLock::new(None), refresh: Mutex::new(()) }
    }

    /// A valid session, authenticating if there is none or it is about to expire.
    pub async fn session(&self) -> Result<Session> {
        if let Some(s) = self.session.read().await.as_ref().filter(|s| s.fresh()) {
            return Ok(s.clone());
        }
        let _flight = self.refresh.lock().await;
        // Someone else may have refreshed while we waited.
        if let Some(s) = self.session.read().await.as_ref().filter(|s| s.fresh()) {
            return Ok(s.clone());
        }
        let s = self.authenticate().await?;
        *self.session.write().await = Some(s.clone());
        Ok(s)
    }

    /// Drop `token` after Swift refused it (no-op if already replaced).
    pub async fn invalidate(&self, token: &str) {
        let mut guard = self.session.write().await;
        if guard.as_ref().is_some_and(|s| &*s.token == token) {
            *guard = None;
        }
    }

    async fn authenticate(&self) -> Result<Session> {
        match &self.spec {
            AuthSpec::V1 { url, user, key } => {
                let what = "TempAuth v1.0 login";
                let resp = self
                    .http
                    .get(url)
                    .header("X-Auth-User", user)
                    .header("X-Auth-Key", key.expose_secret())
                    .send()
                    .await
                    .map_err(|e| transport_error(e, what))?;
                if !resp.status().is_success() {
                    return Err(status_error(resp.status(), resp.headers(), what));
                }
                let h = resp.headers();
                let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let token = get("x-auth-token").or_else(|| get("x-storage-token"));
                let storage = get("x-storage-url");
                let (Some(token), Some(storage)) = (token, storage) else {
                    return Err(StorageError::permanent(format!("{what}: answer has no token or storage URL")));
                };
                let expires = get("x-auth-token-expires")
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(|secs| SystemTime::now() + Duration::from_secs(secs));
                Ok(Session { token: token.into(), storage_url: storage.trim_end_matches('/').into(), expires })
            }
            AuthSpec::V3 { url, user, password, user_domain, project, region, interface } => {
                let what = "Keystone v3 login";
                let scope = match project {
                    ProjectScope::Id(id) => json!({ "project": { "id": id } }),
                    ProjectScope::Name { name, domain } => {
                        json!({ "project": { "name": name, "domain": { "name": domain } } })
                    }
                    ProjectScope::None => Value::Null,
                };
                let mut body = json!({ "auth": { "identity": { "methods": ["password"], "password": { "user": {
                    "name": user, "domain": { "name": user_domain }, "password": password.expose_secret() } } } } });
                if !scope.is_null() {
                    body["auth"]["scope"] = scope;
                }
                let endpoint = if url.ends_with("/auth/tokens") { url.clone() } else { format!("{url}/auth/tokens") };
                let resp = self.http.post(endpoint).json(&body).send().await.map_err(|e| transport_error(e, what))?;
                if !resp.status().is_success() {
                    return Err(status_error(resp.status(), resp.headers(), what));
                }
                let token = resp
                    .headers()
                    .get("x-subject-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .ok_or_else(|| StorageError::permanent(format!("{what}: answer has no X-Subject-Token")))?;
                let doc: Value = csal_http::read_json(resp, what).await?;
                let expires = doc["token"]["expires_at"].as_str().and_then(parse_time);
                let storage = catalog_url(&doc["token"]["catalog"], "endpoints", |ep| {
                    ep["interface"].as_str() == Some(interface.as_str())
                        && region
                            .as_deref()
                            .is_none_or(|r| ep["region_id"].as_str() == Some(r) || ep["region"].as_str() == Some(r))
                })
                .and_then(|ep| ep["url"].as_str().map(str::to_owned))
                .ok_or_else(|| no_endpoint(region.as_deref()))?;
                Ok(Session { token: token.into(), storage_url: storage.trim_end_matches('/').into(), expires })
            }
            AuthSpec::RaxV2 { url, user, api_key, region, internal } => {
                let what = "Rackspace identity login";
                let body = json!({ "auth": { "RAX-KSKEY:apiKeyCredentials": {
                    "username": user, "apiKey": api_key.expose_secret() } } });
                let resp = self.http.post(url).json(&body).send().await.map_err(|e| transport_error(e, what))?;
                if !resp.status().is_success() {
                    return Err(status_error(resp.status(), resp.headers(), what));
                }
                let doc: Value = csal_http::read_json(resp, what).await?;
                let token = doc["access"]["token"]["id"]
                    .as_str()
                    .ok_or_else(|| StorageError::permanent(format!("{what}: answer has no token")))?;
                let expires = doc["access"]["token"]["expires"].as_str().and_then(parse_time);
                let key = if *internal { "internalURL" } else { "publicURL" };
                let storage = catalog_url(&doc["access"]["serviceCatalog"], "endpoints", |ep| {
                    ep["region"].as_str().is_some_and(|r| r.eq_ignore_ascii_case(region))
                })
                .and_then(|ep| ep[key].as_str().map(str::to_owned))
                .ok_or_else(|| no_endpoint(Some(region)))?;
                Ok(Session { token: token.into(), storage_url: storage.trim_end_matches('/').into(), expires })
            }
        }
    }
}

use csal_core::time_format::parse_rfc3339 as parse_time;

fn no_endpoint(region: Option<&str>) -> StorageError {
    StorageError::invalid_config(format!(
        "the service catalog has no object-store endpoint{}",
        region.map(|r| format!(" in region '{r}'")).unwrap_or_default()
    ))
}

/// The first endpoint of the `object-store` service that passes `pick`.
fn catalog_url<'a>(catalog: &'a Value, endpoints: &str, pick: impl Fn(&Value) -> bool) -> Option<&'a Value> {
    catalog
        .as_array()?
        .iter()
        .filter(|svc| svc["type"].as_str() == Some("object-store"))
        .flat_map(|svc| svc[endpoints].as_array().into_iter().flatten())
        .find(|ep| pick(ep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_picks_region_and_interface() {
        let catalog = json!([
            { "type": "identity", "endpoints": [{ "interface": "public", "region_id": "GRA", "url": "https://id" }] },
            { "type": "object-store", "endpoints": [
                { "interface": "internal", "region_id": "GRA", "url": "https://internal" },
                { "interface": "public", "region_id": "SBG", "url": "https://sbg" },
                { "interface": "public", "region_id": "GRA", "url": "https://gra" } ] }
        ]);
        let ep = catalog_url(&catalog, "endpoints", |ep| ep["interface"] == "public" && ep["region_id"] == "GRA");
        assert_eq!(ep.unwrap()["url"], "https://gra");
    }

    #[test]
    fn rackspace_catalog_gives_the_region_url() {
        let catalog = json!([
            { "name": "cloudFiles", "type": "object-store", "endpoints": [
                { "region": "DFW", "publicURL": "https://dfw", "internalURL": "https://snet-dfw" },
                { "region": "LON", "publicURL": "https://lon", "internalURL": "https://snet-lon" } ] }
        ]);
        let ep = catalog_url(&catalog, "endpoints", |ep| {
            ep["region"].as_str().is_some_and(|r| r.eq_ignore_ascii_case("lon"))
        });
        assert_eq!(ep.unwrap()["publicURL"], "https://lon");
        assert!(parse_time("2026-11-29T11:00:11.000000Z").is_some());
        assert!(parse_time("2026-11-29T11:00:11.000-06:00").is_some());
    }
}
