//! PROPFIND (Depth 0 / 1) and the recursive, paginated listing.
//!
//! WebDAV has no paging, so the provider does it: it walks the folder tree
//! with Depth 1 PROPFINDs (skipping sub-trees that sort entirely before the
//! continuation token), sorts the matching ids, and returns the ones after
//! the token. The token is the last id returned, so pages are stable while
//! objects come and go.

use std::time::SystemTime;

use csal_core::{ListPage, ListRequest, ObjectMeta, Result, StorageError};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderName};
use reqwest_dav::list_cmd::{ListMultiStatus, ListProp};

use crate::client::DavClient;
use crate::error::status_error;

const PROPFIND_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop>
<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/><D:getcontenttype/>
</D:prop></D:propfind>"#;

/// Name prefix of in-flight uploads (never listed; ids never start with '.').
pub(crate) const PARTIAL_PREFIX: &str = ".csal-partial-";

pub(crate) const DEFAULT_PAGE: usize = 1000;

/// One entry of a PROPFIND answer.
pub(crate) struct Entry {
    pub rel: String,
    pub is_dir: bool,
    pub meta: ObjectMeta,
}

fn propfind() -> Method {
    Method::from_bytes(b"PROPFIND").expect("method")
}

/// PROPFIND `rel` with `depth`; `Ok(None)` when it does not exist.
pub(crate) async fn propfind_entries(client: &DavClient, rel: &str, depth: u8) -> Result<Option<Vec<Entry>>> {
    let what = format!("PROPFIND {}", if rel.is_empty() { "/" } else { rel });
    let headers = [
        (HeaderName::from_static("depth"), depth.to_string()),
        (CONTENT_TYPE, "application/xml; charset=utf-8".into()),
    ];
    let resp = client.simple_with_body(propfind(), rel, &headers, Some(PROPFIND_BODY)).await?;
    let status = resp.status();
    if status.as_u16() == 404 {
        return Ok(None);
    }
    if status.as_u16() != 207 {
        return Err(status_error(status, resp.headers(), &what));
    }
    let body = csal_http::read_answer(resp, &what).await?;
    let parsed: ListMultiStatus = reqwest_dav::re_exports::serde_xml_rs::from_reader(&body[..])
        .map_err(|e| StorageError::permanent(format!("{what}: unreadable multistatus answer")).with_source(e))?;
    let mut out = Vec::with_capacity(parsed.responses.len());
    for response in parsed.responses {
        let Some(rel) = client.rel_of_href(&response.href) else { continue };
        let ok = response.prop_stat.into_iter().find(|p| p.status.split_whitespace().nth(1) == Some("200"));
        let Some(ok) = ok else { continue };
        out.push(entry(rel, ok.prop));
    }
    Ok(Some(out))
}

fn entry(rel: String, prop: ListProp) -> Entry {
    let is_dir = prop.resource_type.collection.is_some();
    let meta = ObjectMeta {
        modified: prop.last_modified.map(SystemTime::from),
        content_type: prop.content_type.filter(|c| !c.is_empty() && !is_dir),
        etag: prop.tag.map(|t| t.trim_matches('"').to_owned()).filter(|t| !t.is_empty()),
        ..ObjectMeta::new(rel.clone(), prop.content_length.unwrap_or(0).max(0) as u64)
    };
    Entry { rel, is_dir, meta }
}

/// Metadata of one object (PROPFIND Depth 0); a collection is `NotFound`.
pub(crate) async fn stat(client: &DavClient, id: &str) -> Result<ObjectMeta> {
    let not_found = || StorageError::not_found(format!("no object '{id}'"));
    let entries = propfind_entries(client, id, 0).await?.ok_or_else(not_found)?;
    let entry = entries.into_iter().find(|e| e.rel == id).ok_or_else(not_found)?;
    if entry.is_dir {
        return Err(not_found());
    }
    Ok(entry.meta)
}

/// One page of the recursive listing.
pub(crate) async fn list(client: &DavClient, request: &ListRequest) -> Result<ListPage> {
    let id_prefix = request.id_prefix();
    let token = request.continuation.as_deref();
    let limit = request.limit.unwrap_or(DEFAULT_PAGE).max(1);
    let start = id_prefix.rfind('/').map(|i| id_prefix[..i].to_owned()).unwrap_or_default();
    let mut found: Vec<ObjectMeta> = Vec::new();
    let mut stack = vec![start];
    while let Some(dir) = stack.pop() {
        let rel = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let Some(entries) = propfind_entries(client, &rel, 1).await? else { continue };
        for e in entries {
            if e.rel == dir || e.rel.is_empty() {
                continue;
            }
            let name = e.rel.rsplit('/').next().unwrap_or_default();
            if e.is_dir {
                let sub = format!("{}/", e.rel);
                let could_match = id_prefix.starts_with(&sub) || sub.starts_with(&id_prefix);
                // Every id under `sub` sorts before the token: skip the sub-tree.
                let all_before_token = token.is_some_and(|t| !t.starts_with(&sub) && t > sub.as_str());
                if could_match && !all_before_token {
                    stack.push(e.rel);
                }
                continue;
            }
            if name.starts_with(PARTIAL_PREFIX) || !e.rel.starts_with(&id_prefix) {
                continue;
            }
            if token.is_some_and(|t| e.rel.as_str() <= t) || !request.matches_time(&e.meta) {
                continue;
            }
            found.push(e.meta);
        }
    }
    found.sort_by(|a, b| a.object_id.cmp(&b.object_id));
    let more = found.len() > limit;
    found.truncate(limit);
    let next_page = if more { found.last().map(|m| m.object_id.clone()) } else { None };
    Ok(ListPage { objects: found, next_page })
}
