//! Container listing: JSON format, `prefix`, `marker` pagination; the
//! modified-time window is applied here (Swift has no server-side filter),
//! fetching more Swift pages until the CSAL page is full.

use std::time::SystemTime;

use csal_core::{ListPage, ListRequest, ObjectMeta, Result};
use reqwest::Method;
use serde::Deserialize;

use crate::client::SwiftClient;
use crate::error::status_error;

const DEFAULT_PAGE: usize = 1000;
/// Swift's own listing limit.
pub(crate) const SWIFT_MAX: usize = 10_000;

#[derive(Deserialize)]
struct Item {
    name: Option<String>,
    bytes: Option<u64>,
    last_modified: Option<String>,
    hash: Option<String>,
    content_type: Option<String>,
}

fn parse_time(text: &str) -> Option<SystemTime> {
    // `2026-11-29T10:00:11.123456` (UTC, no zone).
    humantime::parse_rfc3339(&format!("{}Z", text.get(..19)?)).ok()
}

pub(crate) async fn list(client: &SwiftClient, request: &ListRequest) -> Result<ListPage> {
    list_container(client, &client.settings.container, request).await
}

/// One page of any of the instance's containers (the segment container too).
pub(crate) async fn list_container(client: &SwiftClient, container: &str, request: &ListRequest) -> Result<ListPage> {
    let prefix = request.id_prefix();
    let limit = request.limit.unwrap_or(DEFAULT_PAGE).max(1);
    let mut marker = request.continuation.clone();
    let mut page = ListPage::default();
    loop {
        let ask = (limit - page.objects.len()).clamp(1, SWIFT_MAX);
        let what = format!("GET container {container}");
        let resp = client
            .send(&what, |s| {
                let mut q = vec![("format", "json".to_owned()), ("limit", ask.to_string())];
                if !prefix.is_empty() {
                    q.push(("prefix", prefix.clone()));
                }
                if let Some(m) = &marker {
                    q.push(("marker", m.clone()));
                }
                client.http.request(Method::GET, SwiftClient::container_url(s, container)).query(&q)
            })
            .await?;
        if resp.status().as_u16() == 404 {
            return Ok(ListPage::default());
        }
        if !resp.status().is_success() {
            return Err(status_error(resp.status(), resp.headers(), &what));
        }
        let items: Vec<Item> =
            if resp.status().as_u16() == 204 { Vec::new() } else { csal_http::read_json(resp, &what).await? };
        let got = items.len();
        for item in items {
            let Some(name) = item.name else { continue }; // subdir entries
            marker = Some(name.clone());
            let meta = ObjectMeta {
                modified: item.last_modified.as_deref().and_then(parse_time),
                etag: item.hash,
                content_type: item.content_type,
                ..ObjectMeta::new(name, item.bytes.unwrap_or(0))
            };
            if request.matches_time(&meta) {
                page.objects.push(meta);
            }
        }
        if got < ask {
            return Ok(page); // end of the container
        }
        if page.objects.len() >= limit {
            page.next_page = marker;
            return Ok(page);
        }
    }
}
