//! PROPFIND (Depth 0 / 1) and the recursive, paginated listing.
//!
//! WebDAV has no paging, so the listing is [`csal_core::list_tree`] over
//! Depth 1 PROPFINDs: one per folder on the page's way, in id order,
//! resuming after the continuation token (the last id of the previous
//! page) without visiting earlier sub-trees, and stopping when the page is
//! full. A page costs O(page + the folders on the path to the token)
//! requests and keeps at most a page of entries.

use std::time::SystemTime;

use csal_core::{FolderSelection, FolderTree, ListPage, ListRequest, ObjectMeta, Result, StorageError};
use csal_http::Quota;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderName};
use reqwest_dav::list_cmd::{ListMultiStatus, ListProp};

use crate::client::DavClient;
use crate::error::status_error;

const PROPFIND_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop>
<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/><D:getcontenttype/>
</D:prop></D:propfind>"#;

/// The root's PROPFIND in health checks: RFC 4331's quota properties are
/// returned only when asked for by name (and cost the server a size
/// computation, so listings do not ask).
const QUOTA_PROPFIND_BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop>
<D:resourcetype/><D:quota-available-bytes/><D:quota-used-bytes/>
</D:prop></D:propfind>"#;

/// Name prefix of in-flight uploads (never listed; ids never start with '.').
pub(crate) const PARTIAL_PREFIX: &str = ".csal-partial-";

pub(crate) const DEFAULT_PAGE: usize = 1000;

/// One entry of a PROPFIND answer.
pub(crate) struct Entry {
    pub rel: String,
    pub is_dir: bool,
    pub meta: ObjectMeta,
    /// RFC 4331 quota of a collection, when asked for and answered.
    pub quota: Option<Quota>,
}

fn propfind_method() -> Method {
    Method::from_bytes(b"PROPFIND").expect("method")
}

/// PROPFIND `rel` with `depth`; `Ok(None)` when it does not exist.
pub(crate) async fn propfind_entries(client: &DavClient, rel: &str, depth: u8) -> Result<Option<Vec<Entry>>> {
    propfind(client, rel, depth, PROPFIND_BODY).await
}

/// PROPFIND Depth 0 of the root, with its quota properties.
pub(crate) async fn propfind_root_quota(client: &DavClient) -> Result<Option<Vec<Entry>>> {
    propfind(client, "", 0, QUOTA_PROPFIND_BODY).await
}

async fn propfind(client: &DavClient, rel: &str, depth: u8, body: &'static str) -> Result<Option<Vec<Entry>>> {
    let what = format!("PROPFIND {}", if rel.is_empty() { "/" } else { rel });
    let headers = [
        (HeaderName::from_static("depth"), depth.to_string()),
        (CONTENT_TYPE, "application/xml; charset=utf-8".into()),
    ];
    let resp = client.simple_with_body(propfind_method(), rel, &headers, Some(body)).await?;
    let status = resp.status();
    if status.as_u16() == 404 {
        return Ok(None);
    }
    if status.as_u16() != 207 {
        return Err(status_error(status, resp.headers(), &what));
    }
    let body = csal_http::read_answer(resp, &what).await?;
    parse_multistatus(client, &body, &what).map(Some)
}

/// The entries of a 207 multistatus answer (the server's XML: hostile input).
pub(crate) fn parse_multistatus(client: &DavClient, body: &[u8], what: &str) -> Result<Vec<Entry>> {
    let parsed: ListMultiStatus = reqwest_dav::re_exports::serde_xml_rs::from_reader(body)
        .map_err(|e| StorageError::permanent(format!("{what}: unreadable multistatus answer")).with_source(e))?;
    let mut out = Vec::with_capacity(parsed.responses.len());
    for response in parsed.responses {
        let Some(rel) = client.rel_of_href(&response.href) else { continue };
        let ok = response.prop_stat.into_iter().find(|p| p.status.split_whitespace().nth(1) == Some("200"));
        let Some(ok) = ok else { continue };
        out.push(entry(rel, ok.prop));
    }
    Ok(out)
}

fn entry(rel: String, prop: ListProp) -> Entry {
    let is_dir = prop.resource_type.collection.is_some();
    let meta = ObjectMeta {
        modified: prop.last_modified.map(SystemTime::from),
        content_type: prop.content_type.filter(|c| !c.is_empty() && !is_dir),
        etag: prop.tag.map(|t| t.trim_matches('"').to_owned()).filter(|t| !t.is_empty()),
        ..ObjectMeta::new(rel.clone(), prop.content_length.unwrap_or(0).max(0) as u64)
    };
    let quota = rfc4331_quota(prop.quota_available_bytes, prop.quota_used_bytes);
    Entry { rel, is_dir, meta, quota }
}

/// RFC 4331's `quota-available-bytes` / `quota-used-bytes` as a quota
/// (<https://www.rfc-editor.org/rfc/rfc4331>). Negative values are not
/// sizes (Nextcloud answers -1 not computed, -2 unknown, -3 unlimited) and
/// count as unknown. No total is derived: servers differ in what the two
/// mean (Nextcloud: the user's quota; wsgidav: the whole disk's usage and
/// free space), so the free bytes feed the capacity forecast and no
/// "90% used" verdict is made from them.
fn rfc4331_quota(available: Option<i64>, used: Option<i64>) -> Option<Quota> {
    let size = |v: Option<i64>| v.and_then(|n| u64::try_from(n).ok());
    let (available, used) = (size(available), size(used));
    if available.is_none() && used.is_none() {
        return None;
    }
    Some(Quota { total: None, used, remaining: available, warning: None })
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
    csal_core::list_tree(&mut DavTree { client }, request, DEFAULT_PAGE, None).await
}

struct DavTree<'a> {
    client: &'a DavClient,
}

#[csal_core::async_trait]
impl FolderTree for DavTree<'_> {
    async fn read_folder(&mut self, folder: &str, into: &mut FolderSelection) -> Result<bool> {
        let rel = if folder.is_empty() { String::new() } else { format!("{folder}/") };
        let Some(entries) = propfind_entries(self.client, &rel, 1).await? else { return Ok(false) };
        for e in entries {
            // The folder itself, or anything that is not a direct child.
            let (parent, name) = e.rel.rsplit_once('/').unwrap_or(("", e.rel.as_str()));
            if e.rel.is_empty() || e.rel == folder || parent != folder || name.starts_with(PARTIAL_PREFIX) {
                continue;
            }
            if e.is_dir {
                into.offer_folder(name);
            } else {
                into.offer_file(name, Some(e.meta));
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::rfc4331_quota;

    #[test]
    fn negative_quota_values_are_unknown_not_sizes() {
        // Nextcloud: -3 unlimited, -2 unknown, -1 not computed.
        let unlimited = rfc4331_quota(Some(-3), Some(4096)).unwrap();
        assert_eq!((unlimited.free(), unlimited.total, unlimited.used), (None, None, Some(4096)));
        assert_eq!(rfc4331_quota(Some(-2), Some(-1)), None);
        assert_eq!(rfc4331_quota(None, None), None);
        let limited = rfc4331_quota(Some(900), Some(100)).unwrap();
        assert_eq!((limited.free(), limited.total, limited.nearly_full()), (Some(900), None, None));
    }
}
