//! Listing. Graph lists one folder's children at a time (`$top`,
//! `@odata.nextLink`), so a recursive listing is a walk: the continuation
//! token holds the next link of the folder being read plus the folders still
//! to visit. Each call reads one Graph page. Folders that cannot hold ids
//! with the wanted prefix are not visited.

use csal_core::{ListPage, ListRequest, Result, StorageError};
use serde_json::{Value, json};

use crate::client::GraphClient;
use crate::error::classify;
use crate::read::meta_from;

const MAX_TOP: usize = 1000;

#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(crate) struct Walk {
    /// `@odata.nextLink` of the folder being read.
    n: Option<String>,
    /// That folder, relative to the root.
    f: String,
    /// Folders still to visit (relative to the root).
    p: Vec<String>,
}

pub(crate) fn encode(w: &Walk) -> String {
    serde_json::to_string(w).unwrap_or_default().bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn decode(s: &str) -> Option<Walk> {
    if s.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
    serde_json::from_slice(&bytes?).ok()
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() { name.to_owned() } else { format!("{folder}/{name}") }
}

/// Whether a folder (relative id) can contain ids starting with `prefix`.
fn may_contain(folder: &str, prefix: &str) -> bool {
    let f = format!("{folder}/");
    f.starts_with(prefix) || prefix.starts_with(&f)
}

pub(crate) async fn list(client: &GraphClient, request: &ListRequest) -> Result<ListPage> {
    let what = format!("list '{}'", request.path);
    let top = request.limit.unwrap_or(200).clamp(1, MAX_TOP);
    let start = request.path.trim_matches('/').to_owned();
    let mut walk = match &request.continuation {
        Some(token) => decode(token).ok_or_else(|| StorageError::invalid_input("malformed list continuation token"))?,
        None => Walk { n: None, f: String::new(), p: vec![start.clone()] },
    };
    let (url, folder) = match walk.n.take() {
        Some(next) => (next, walk.f.clone()),
        None => match walk.p.pop() {
            Some(f) => (format!("{}?$top={top}", client.action_url(&f, "children")), f),
            None => return Ok(ListPage::default()),
        },
    };
    let answer = match client.send(&what, |t| GraphClient::bearer(client.http.get(&url), t)).await? {
        Ok(resp) => crate::client::body_json(resp, &what).await?,
        // The start folder (not yet created) or a folder deleted meanwhile: nothing there.
        Err(e) if e.status == 404 => json!({ "value": [] }),
        Err(e) => return Err(classify(e, &what)),
    };
    let id_prefix = request.id_prefix();
    let mut objects = Vec::new();
    for item in answer.get("value").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = item.get("name").and_then(Value::as_str) else { continue };
        let rel = join(&folder, name);
        if item.get("folder").is_some() {
            if may_contain(&rel, &id_prefix) {
                walk.p.push(rel);
            }
        } else if let Some(meta) = meta_from(rel, item) {
            if meta.object_id.starts_with(&id_prefix) && request.matches_time(&meta) {
                objects.push(meta);
            }
        }
    }
    walk.n = answer.get("@odata.nextLink").and_then(Value::as_str).map(str::to_owned);
    walk.f = folder;
    let next_page = if walk.n.is_some() || !walk.p.is_empty() { Some(encode(&walk)) } else { None };
    Ok(ListPage { objects, next_page })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_pruning_keeps_only_possible_prefixes() {
        assert!(may_contain("a", "a/b-"));
        assert!(may_contain("a/b", "a/"));
        assert!(may_contain("a", ""));
        assert!(!may_contain("c", "a/b-"));
        assert!(!may_contain("ab", "a/"));
    }

    #[test]
    fn tokens_round_trip() {
        let w = Walk { n: Some("http://x/?$skiptoken=1".into()), f: "a".into(), p: vec!["b".into()] };
        let back = decode(&encode(&w)).unwrap();
        assert_eq!(back.n, w.n);
        assert_eq!(back.p, w.p);
        assert!(decode("zz").is_none());
    }
}
