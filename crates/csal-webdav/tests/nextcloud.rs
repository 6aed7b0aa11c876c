//! The `nextcloud` preset's chunked upload v2, through a local fake of
//! Nextcloud's chunking endpoints (see `support/nextcloud_fake.rs`) in front
//! of wsgidav laid out like Nextcloud (`/remote.php/dav/files/test`). The
//! shared conformance suite for the preset is in `conformance.rs`.

csal_core::link_providers!(csal_webdav);

#[allow(dead_code)]
mod support {
    pub mod nextcloud_fake;
}

use std::sync::atomic::Ordering;

use csal_conformance::require_env;
use csal_core::{ByteStream, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
use serde_json::json;

fn config(url: &str, password: &str) -> serde_json::Value {
    json!({ "server_url": url, "username": "test", "app_password": password, "chunk_size_mb": 5 })
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_above_the_chunk_size_use_chunked_upload_v2() {
    let Some(upstream) = require_env("CSAL_TEST_NEXTCLOUD_URL", "nextcloud-chunking", "nextcloud") else { return };
    let fake = support::nextcloud_fake::start(&upstream).await;
    let router =
        StorageRouter::from_definitions(&[InstanceDefinition::new("nc", "nextcloud", config(&fake.url, "test"))]);
    let m = router.module("nc").unwrap();
    let data = bytes::Bytes::from((0..11 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
    // Unknown size, so the provider has to decide from the stream itself.
    let body = ByteStream::new(
        futures::stream::iter(data.chunks(300_000).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect::<Vec<_>>()),
        None,
    );
    let receipt = m.write(body, WriteMeta::new("nc-test/big.bin")).await.unwrap();
    assert_eq!(fake.counters.chunks.load(Ordering::Relaxed), 3, "11 MiB in 5 MiB chunks");
    assert_eq!(fake.counters.assembled.load(Ordering::Relaxed), 1);
    let back = m.read(&receipt.object_id, None).await.unwrap().collect_limited(16 << 20).await.unwrap();
    assert_eq!(back, data);
    // Small objects go the plain way.
    let small = m.write(ByteStream::from_bytes(vec![1u8; 1000]), WriteMeta::new("nc-test/small.bin")).await.unwrap();
    assert_eq!(fake.counters.chunks.load(Ordering::Relaxed), 3);
    m.delete(&small.object_id).await.unwrap();
    m.delete(&receipt.object_id).await.unwrap();
}
