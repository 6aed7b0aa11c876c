//! Listing: a walk of the folder tree with `files.list`
//! (`q = "'FOLDER' in parents and trashed = false"`, `pageSize`,
//! `pageToken`). The continuation token holds the page token of the folder
//! being read and the folders still to visit; each call reads one page.

use csal_core::{ListPage, ListRequest, Result, StorageError};
use serde_json::Value;

use crate::client::{DriveClient, FILE_FIELDS, FOLDER_MIME, escape};
use crate::error::classify;
use crate::read::meta_from;

#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(crate) struct Walk {
    /// Page token inside the folder being read.
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

pub(crate) async fn list(client: &DriveClient, request: &ListRequest) -> Result<ListPage> {
    let what = format!("list '{}'", request.path);
    let page_size = request.limit.unwrap_or(1000).clamp(1, 1000);
    let mut walk = match &request.continuation {
        Some(token) => decode(token).ok_or_else(|| StorageError::invalid_input("malformed list continuation token"))?,
        None => {
            let start = request.path.trim_matches('/').to_owned();
            let Some(id) = client.folder_id(&start, false).await? else { return Ok(ListPage::default()) };
            Walk { n: None, f: (String::new(), String::new()), p: vec![(start, id)] }
        }
    };
    let (folder, page_token) = match walk.n.take() {
        Some(t) => (walk.f.clone(), Some(t)),
        None => match walk.p.pop() {
            Some(f) => (f, None),
            None => return Ok(ListPage::default()),
        },
    };
    let url = client.files_url();
    let mut query = client.list_common();
    query.push(("q", format!("'{}' in parents and trashed = false", escape(&folder.1))));
    query.push(("pageSize", page_size.to_string()));
    query.push(("fields", format!("nextPageToken,files({FILE_FIELDS})")));
    if let Some(t) = &page_token {
        query.push(("pageToken", t.clone()));
    }
    let answer = match client.send(&what, |t| DriveClient::bearer(client.http.get(&url).query(&query), t)).await? {
        Ok(resp) => crate::client::body_json(resp, &what).await?,
        Err(e) if e.status == 404 => Value::Null,
        Err(e) => return Err(classify(e, &what)),
    };
    let id_prefix = request.id_prefix();
    let mut objects = Vec::new();
    for file in answer["files"].as_array().into_iter().flatten() {
        let (Some(name), Some(id)) = (file["name"].as_str(), file["id"].as_str()) else { continue };
        let rel = if folder.0.is_empty() { name.to_owned() } else { format!("{}/{name}", folder.0) };
        if file["mimeType"].as_str() == Some(FOLDER_MIME) {
            if may_contain(&rel, &id_prefix) {
                walk.p.push((rel, id.to_owned()));
            }
        } else {
            let meta = meta_from(rel, file);
            if meta.object_id.starts_with(&id_prefix) && request.matches_time(&meta) {
                objects.push(meta);
            }
        }
    }
    walk.n = answer["nextPageToken"].as_str().map(str::to_owned);
    walk.f = folder;
    let next_page = if walk.n.is_some() || !walk.p.is_empty() { Some(encode(&walk)) } else { None };
    Ok(ListPage { objects, next_page })
}
