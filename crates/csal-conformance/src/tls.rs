//! A private CA, end to end: the same provider config over TLS works when
//! `ca_file` names the CA that signed the server's certificate, and fails
//! clearly when it does not (csal-testkit's `TlsProxy` makes the CA and the
//! TLS server; this checks what a provider does with it).

use std::time::Duration;

use bytes::Bytes;
use csal_core::{ErrorKind, InstanceDefinition, ListRequest, StorageModule, StorageRouter, WriteMeta};

use crate::data::{chunked, pattern};

/// Longest a refused handshake may take to surface (no hang, no retry loop).
const REFUSAL_LIMIT: Duration = Duration::from_secs(60);

fn module(provider_type: &str, config: serde_json::Value) -> std::sync::Arc<dyn StorageModule> {
    let definition = InstanceDefinition::new("tls", provider_type, config);
    let router = StorageRouter::from_definitions(&[definition]);
    match router.module("tls") {
        Ok(m) => m,
        Err(e) => panic!("{provider_type}: the instance did not load: {e} ({:?})", router.instances()),
    }
}

/// With `with_ca` (the config with `ca_file` set to the test CA): write,
/// read back, list and delete work over TLS. With `without_ca` (the same
/// config without it): the first request fails within [`REFUSAL_LIMIT`]
/// with a `Permanent` error saying the certificate is not trusted.
pub async fn private_ca(provider_type: &str, with_ca: serde_json::Value, without_ca: serde_json::Value) {
    let trusting = module(provider_type, with_ca);
    let folder = format!("csal-tls/{}", ulid::Ulid::new().to_string().to_lowercase());
    let data: Bytes = pattern(300 * 1024, 7);
    let receipt = trusting
        .write(chunked(&data, 3), WriteMeta::new(format!("{folder}/over-tls.bin")))
        .await
        .unwrap_or_else(|e| panic!("{provider_type}: write over TLS with ca_file: {e}"));
    let back = trusting
        .read(&receipt.object_id, None)
        .await
        .unwrap_or_else(|e| panic!("{provider_type}: read over TLS: {e}"))
        .collect_limited(data.len() + 1)
        .await
        .unwrap_or_else(|e| panic!("{provider_type}: read body over TLS: {e}"));
    assert!(
        back == data,
        "{provider_type}: read back {} bytes that differ from the {} written",
        back.len(),
        data.len()
    );
    let page = trusting
        .list(&ListRequest::new(folder.clone()))
        .await
        .unwrap_or_else(|e| panic!("{provider_type}: list over TLS: {e}"));
    assert!(
        page.objects.iter().any(|o| o.object_id == receipt.object_id),
        "{provider_type}: list over TLS does not show {}",
        receipt.object_id
    );
    trusting.delete(&receipt.object_id).await.unwrap_or_else(|e| panic!("{provider_type}: delete over TLS: {e}"));
    let gone = trusting.stat(&receipt.object_id).await;
    assert_eq!(gone.err().map(|e| e.kind()), Some(ErrorKind::NotFound), "{provider_type}: deleted object still there");

    let refusing = module(provider_type, without_ca);
    let attempt = refusing.write(chunked(&data, 5), WriteMeta::new(format!("{folder}/refused.bin")));
    let result = tokio::time::timeout(REFUSAL_LIMIT, attempt)
        .await
        .unwrap_or_else(|_| panic!("{provider_type}: without ca_file the write hung for {REFUSAL_LIMIT:?}"));
    let err = match result {
        Ok(r) => panic!("{provider_type}: without ca_file the write succeeded ({}): the CA was trusted", r.object_id),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::Permanent, "{provider_type}: without ca_file: {err}");
    assert!(err.to_string().contains("not trusted"), "{provider_type}: without ca_file, unclear error: {err}");
}
