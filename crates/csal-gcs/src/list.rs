//! Listing: `objects.list` with `prefix`, `maxResults` and `pageToken`; the
//! time window is applied here (the JSON API has no time filter).

use csal_core::{ListPage, ListRequest, Result, StorageError, check_object_id};

use crate::client::{GcsClient, ObjectResource};

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectList {
    #[serde(default)]
    items: Vec<ObjectResource>,
    next_page_token: Option<String>,
}

/// GCS returns at most 1,000 objects per page.
const MAX_PAGE: usize = 1000;

pub(crate) async fn list(client: &GcsClient, request: &ListRequest) -> Result<ListPage> {
    let prefix = request.id_prefix();
    let limit = request.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let mut url = client.objects_url()?;
    {
        let mut q = url.query_pairs_mut();
        if !prefix.is_empty() {
            q.append_pair("prefix", &prefix);
        }
        q.append_pair("maxResults", &limit.to_string());
        q.append_pair(
            "fields",
            "items(name,size,updated,timeCreated,contentType,etag,crc32c,generation,metadata),nextPageToken",
        );
        if let Some(token) = &request.continuation {
            if token.is_empty() {
                return Err(StorageError::invalid_input("empty continuation token"));
            }
            q.append_pair("pageToken", token);
        }
    }
    let what = format!("list {prefix}");
    let page: ObjectList = client.send_json(client.http.get(url), &what).await?;
    let objects = page
        .items
        .iter()
        // Console "folder" placeholders ("dir/") are not objects for us.
        .filter(|o| check_object_id(&o.name).is_ok())
        .map(ObjectResource::to_meta)
        .filter(|m| request.matches_time(m))
        .collect();
    Ok(ListPage { objects, next_page: page.next_page_token.filter(|t| !t.is_empty()) })
}
