//! List Blobs (`restype=container&comp=list`) with `prefix`, `maxresults`
//! and `marker`; the time window is applied here (the service has none).

use std::collections::BTreeMap;

use csal_core::{ListPage, ListRequest, ObjectMeta, Result, StorageError, check_object_id};

use crate::client::AzureClient;

#[derive(Debug, Default, serde::Deserialize)]
struct EnumerationResults {
    #[serde(rename = "Blobs", default)]
    blobs: Blobs,
    #[serde(rename = "NextMarker", default)]
    next_marker: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct Blobs {
    #[serde(rename = "Blob", default)]
    blob: Vec<Blob>,
}

#[derive(Debug, serde::Deserialize)]
struct Blob {
    #[serde(rename = "Name")]
    name: BlobName,
    #[serde(rename = "Properties")]
    properties: Properties,
    #[serde(rename = "Metadata", default)]
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, serde::Deserialize)]
struct BlobName {
    #[serde(rename = "@Encoded", default)]
    encoded: Option<bool>,
    #[serde(rename = "$text", default)]
    value: String,
}

#[derive(Debug, serde::Deserialize)]
struct Properties {
    #[serde(rename = "Last-Modified")]
    last_modified: Option<String>,
    #[serde(rename = "Etag")]
    etag: Option<String>,
    #[serde(rename = "Content-Length")]
    content_length: u64,
    #[serde(rename = "Content-Type")]
    content_type: Option<String>,
}

/// The service returns at most 5,000 blobs per page.
const MAX_PAGE: usize = 5000;

pub(crate) async fn list(client: &AzureClient, request: &ListRequest) -> Result<ListPage> {
    let prefix = request.id_prefix();
    let limit = request.limit.unwrap_or(1000).clamp(1, MAX_PAGE);
    let mut url = client.container_url()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("comp", "list").append_pair("include", "metadata");
        if !prefix.is_empty() {
            q.append_pair("prefix", &prefix);
        }
        q.append_pair("maxresults", &limit.to_string());
        if let Some(marker) = &request.continuation {
            if marker.is_empty() {
                return Err(StorageError::invalid_input("empty continuation token"));
            }
            q.append_pair("marker", marker);
        }
    }
    let what = format!("list {prefix}");
    let response = client.send(client.http.get(url), &what).await?;
    let body = csal_http::read_answer(response, &what).await?;
    parse_listing(&body, request, &what)
}

/// One page from a List Blobs answer (the server's XML: hostile input).
pub(crate) fn parse_listing(body: &[u8], request: &ListRequest, what: &str) -> Result<ListPage> {
    let text = std::str::from_utf8(body)
        .map_err(|e| StorageError::transient(format!("{what}: the listing is not UTF-8")).with_source(e))?;
    let results: EnumerationResults = quick_xml::de::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| StorageError::transient(format!("{what}: unreadable listing")).with_source(e))?;
    let mut objects = Vec::with_capacity(results.blobs.blob.len());
    for blob in results.blobs.blob {
        let name = if blob.name.encoded == Some(true) {
            percent_encoding::percent_decode_str(&blob.name.value).decode_utf8_lossy().into_owned()
        } else {
            blob.name.value
        };
        if check_object_id(&name).is_err() {
            continue; // "folder/" placeholders and names we could not address
        }
        let meta = ObjectMeta {
            object_id: name,
            size: blob.properties.content_length,
            modified: blob.properties.last_modified.as_deref().and_then(|t| httpdate::parse_http_date(t).ok()),
            content_type: blob.properties.content_type.filter(|s| !s.is_empty()),
            etag: blob.properties.etag.map(|e| e.trim_matches('"').to_owned()),
            checksum: None,
            metadata: blob.metadata.unwrap_or_default(),
        };
        if request.matches_time(&meta) {
            objects.push(meta);
        }
    }
    Ok(ListPage { objects, next_page: results.next_marker.filter(|m| !m.is_empty()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_xml_parses() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://x/" ContainerName="c"><Prefix>a/</Prefix><MaxResults>2</MaxResults><Blobs><Blob><Name>a/1.bin</Name><Properties><Last-Modified>Sun, 29 Nov 2026 10:06:31 GMT</Last-Modified><Etag>0x8D</Etag><Content-Length>16</Content-Length><Content-Type>video/mp4</Content-Type><BlobType>BlockBlob</BlobType></Properties><Metadata><camera>cam-5</camera></Metadata></Blob><Blob><Name Encoded="true">a%2F2.bin</Name><Properties><Content-Length>0</Content-Length></Properties></Blob></Blobs><NextMarker>tok</NextMarker></EnumerationResults>"#;
        let r: EnumerationResults = quick_xml::de::from_str(xml).unwrap();
        assert_eq!(r.blobs.blob.len(), 2);
        assert_eq!(r.blobs.blob[0].name.value, "a/1.bin");
        assert_eq!(r.blobs.blob[0].properties.content_length, 16);
        assert_eq!(r.blobs.blob[0].metadata.as_ref().unwrap()["camera"], "cam-5");
        assert_eq!(r.blobs.blob[1].name.encoded, Some(true));
        assert_eq!(r.next_marker.as_deref(), Some("tok"));
        let empty: EnumerationResults =
            quick_xml::de::from_str(r#"<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>"#).unwrap();
        assert!(empty.blobs.blob.is_empty());
    }
}
