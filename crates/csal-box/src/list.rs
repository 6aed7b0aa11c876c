//! Listing: a walk of the folder tree with `GET /folders/{id}/items`
//! (`usemarker=true`, `limit`, `marker`: marker-based paging, which Box
//! recommends over offsets for large folders). The continuation token holds
//! the marker of the folder being read and the folders still to visit;
//! each call reads one page. Folders that cannot hold ids with the wanted
//! prefix are not visited.

use csal_core::{ListPage, ListRequest, Result, StorageError};
use serde_json::Value;

use crate::client::{BoxClient, FILE_FIELDS, body_json};
use crate::error::classify;
use crate::read::meta_from;

/// Box's largest page of folder items.
const MAX_LIMIT: usize = 1000;

#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(crate) struct Walk {
    /// Marker inside the folder being read.
    n: Option<String>,
    /// That folder: (path relative to the root, id).
    f: (String, String),
    /// Folders still to visit.
    p: Vec<(String, String)>,
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

fn may_contain(folder: &str, prefix: &str) -> bool {
    let f = format!("{folder}/");
    f.starts_with(prefix) || prefix.starts_with(&f)
}

pub(crate) async fn list(client: &BoxClient, request: &ListRequest) -> Result<ListPage> {
    let what = format!("list '{}'", request.path);
    let limit = request.limit.unwrap_or(MAX_LIMIT).clamp(1, MAX_LIMIT);
    let mut walk = match &request.continuation {
        Some(token) => decode(token).ok_or_else(|| StorageError::invalid_input("malformed list continuation token"))?,
        None => {
            let start = request.path.trim_matches('/').to_owned();
            let Some(id) = client.folder_id(&start, false).await? else { return Ok(ListPage::default()) };
            Walk { n: None, f: (String::new(), String::new()), p: vec![(start, id)] }
        }
    };
    let (folder, marker) = match walk.n.take() {
        Some(m) => (walk.f.clone(), Some(m)),
        None => match walk.p.pop() {
            Some(f) => (f, None),
            None => return Ok(ListPage::default()),
        },
    };
    let url = client.api(&format!("/folders/{}/items", folder.1));
    let mut query =
        vec![("usemarker", "true".to_owned()), ("limit", limit.to_string()), ("fields", FILE_FIELDS.to_owned())];
    if let Some(m) = &marker {
        query.push(("marker", m.clone()));
    }
    let answer = match client.send(&what, |t| BoxClient::bearer(client.http.get(&url).query(&query), t)).await? {
        Ok(resp) => body_json(resp, &what).await?,
        // A folder deleted meanwhile: nothing there.
        Err(e) if e.status == 404 => Value::Null,
        Err(e) => return Err(classify(e, &what)),
    };
    let id_prefix = request.id_prefix();
    let mut objects = Vec::new();
    for item in answer["entries"].as_array().into_iter().flatten() {
        let (Some(name), Some(id)) = (item["name"].as_str(), item["id"].as_str()) else { continue };
        let rel = if folder.0.is_empty() { name.to_owned() } else { format!("{}/{name}", folder.0) };
        match item["type"].as_str() {
            Some("folder") if may_contain(&rel, &id_prefix) => walk.p.push((rel, id.to_owned())),
            Some("file") => {
                let meta = meta_from(rel, item);
                if meta.object_id.starts_with(&id_prefix) && request.matches_time(&meta) {
                    objects.push(meta);
                }
            }
            // Folders outside the prefix, and web links (not objects).
            _ => {}
        }
    }
    walk.n = answer["next_marker"].as_str().filter(|m| !m.is_empty()).map(str::to_owned);
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
        assert!(may_contain("a", ""));
        assert!(!may_contain("c", "a/b-"));
        assert!(!may_contain("ab", "a/"));
    }

    #[test]
    fn tokens_round_trip() {
        let w = Walk { n: Some("m1".into()), f: ("a".into(), "12".into()), p: vec![("b".into(), "13".into())] };
        let back = decode(&encode(&w)).unwrap();
        assert_eq!(back.n, w.n);
        assert_eq!(back.p, w.p);
        assert!(decode("zz").is_none());
    }
}
