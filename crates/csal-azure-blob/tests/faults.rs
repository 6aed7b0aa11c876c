//! Fault injection on Azurite: a TCP proxy in front of the real server cuts
//! a connection in the middle of a staged block. The block is sent again
//! with the same id and the write completes with the right bytes.
//!
//! (The shared fault-injection proxy crate of the S3 work had not landed
//! when this was written; this is a minimal one of our own, loopback only,
//! bounded: it cuts exactly `cuts` connections, then only forwards.)

csal_core::link_providers!(csal_azure_blob);

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use csal_core::{ByteStream, InstanceDefinition, StorageModule, StorageRouter, WriteMeta};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Forward 127.0.0.1:<port> to `upstream`; the first `cuts` connections that
/// carry more than `cut_after` request bytes are dropped at that point.
async fn cutting_proxy(upstream: SocketAddr, cut_after: u64, cuts: u32) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let left = Arc::new(AtomicU32::new(cuts));
    let done = Arc::new(AtomicU64::new(0));
    let done_out = done.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (left, done) = (left.clone(), done.clone());
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else { return };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    let mut sent = 0u64;
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        if sent + n as u64 > cut_after
                            && left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1)).is_ok()
                        {
                            done.fetch_add(1, Ordering::SeqCst);
                            return; // drop both halves: the connection breaks mid-request
                        }
                        sent += n as u64;
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                let down = async {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    (addr, done_out)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_block_cut_mid_transfer_is_sent_again_and_the_write_completes() {
    let label = "azure_blob@azurite (faults)";
    let Some(endpoint) = csal_conformance::require_env("CSAL_TEST_AZURE_ENDPOINT", label, "azure_blob") else {
        return;
    };
    let account = csal_conformance::require_env("CSAL_TEST_AZURE_ACCOUNT", label, "azure_blob").unwrap();
    let key = csal_conformance::require_env("CSAL_TEST_AZURE_KEY", label, "azure_blob").unwrap();
    let url = reqwest::Url::parse(&endpoint).unwrap();
    let upstream: SocketAddr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap()).parse().unwrap();
    // Cut once, 600 KiB into a connection: in the middle of the third 256 KiB block.
    let (proxy, cuts) = cutting_proxy(upstream, 600 * 1024, 1).await;
    let container = "csal-faults";
    let config = |endpoint: String| {
        serde_json::json!({
            "account": account, "container": container, "endpoint": endpoint, "account_key": key,
            "block_size_kib": 256, "request_timeout_secs": 10,
        })
    };
    let direct =
        csal_azure_blob::AzureBlobModule::new(serde_json::from_value(config(endpoint.clone())).unwrap()).unwrap();
    direct.create_container().await.unwrap();
    let proxied = format!("http://{proxy}{}", url.path());
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("f", "azure_blob", config(proxied))]);
    let data: Vec<u8> = (0..1_300_000u32).map(|i| (i.wrapping_mul(31) % 253) as u8).collect();
    // A stream that cannot be replayed: success must come from the block
    // resend, not from the retry layer running the whole write again.
    let body = ByteStream::new(
        futures::stream::iter(data.chunks(100_000).map(|c| Ok(bytes::Bytes::copy_from_slice(c))).collect::<Vec<_>>()),
        None,
    );
    let receipt = router.write("f", body, WriteMeta::new("faults/cut.bin")).await.unwrap();
    assert_eq!(cuts.load(Ordering::SeqCst), 1, "the proxy did not cut a connection");
    let back = direct.read(&receipt.object_id, None).await.unwrap().collect_limited(2 << 20).await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back[..] == data[..], "bytes differ after a resent block");
    direct.delete(&receipt.object_id).await.unwrap();
}
