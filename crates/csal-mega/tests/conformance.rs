//! The shared conformance suite and MEGA-specific behaviour on the
//! in-process MEGA fake (csal-fakes), which stores only ciphertext.

csal_core::link_providers!(csal_mega);

use csal_core::{ByteRange, ByteStream, ErrorKind, InstanceDefinition, StorageRouter, WriteMeta};
use csal_fakes::mega::MegaFake;
use futures::StreamExt;

fn config(fake: &MegaFake) -> serde_json::Value {
    serde_json::json!({
        "api_url": fake.url(),
        "email": csal_fakes::mega::EMAIL,
        "password": csal_fakes::mega::PASSWORD,
        "root": "csal-test",
    })
}

fn router(fake: &MegaFake) -> StorageRouter {
    StorageRouter::from_definitions(&[InstanceDefinition::new("m", "mega", config(fake))])
}

async fn collect(s: ByteStream) -> csal_core::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut s = s;
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mega_passes_conformance_on_fake() {
    let fake = MegaFake::start().await;
    let mut bad = config(&fake);
    bad["password"] = "not-the-password-123".into();
    let target = csal_conformance::Target::new("mega@fake", "mega", config(&fake))
        .large_size(3 * 1024 * 1024 + 12_345)
        .bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread")]
async fn over_quota_upload_is_quota_exceeded() {
    let fake = MegaFake::start().await;
    fake.set_quota(100);
    let err = router(&fake).write("m", ByteStream::from_bytes(vec![1u8; 500]), WriteMeta::new("q.bin")).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::QuotaExceeded);
}

#[tokio::test(flavor = "multi_thread")]
async fn eagain_is_transient() {
    let fake = MegaFake::start().await;
    let module = csal_mega::MegaModule::new(serde_json::from_value(config(&fake)).unwrap()).unwrap();
    use csal_core::StorageModule;
    module.validate().await.unwrap();
    fake.fail_next_command(-3);
    let err = module.stat("nothing-here.bin").await.unwrap_err();
    assert_eq!(err.kind().class(), csal_core::ErrorClass::Transient, "{err}");
    fake.fail_next_command(-4);
    let err = module.stat("nothing-here.bin").await.unwrap_err();
    assert_eq!(err.kind().class(), csal_core::ErrorClass::Transient, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_ciphertext_fails_the_mac_check_on_full_read() {
    let fake = MegaFake::start().await;
    let r = router(&fake);
    let data: Vec<u8> = (0..400_000u32).map(|i| (i % 253) as u8).collect();
    let receipt = r.write("m", ByteStream::from_bytes(data.clone()), WriteMeta::new("t.bin")).await.unwrap();
    assert_eq!(collect(r.read("m", &receipt.object_id, None).await.unwrap()).await.unwrap(), data);
    let node = fake.file_nodes().pop().unwrap();
    fake.corrupt(&node.handle, 200_000);
    let err = collect(r.read("m", &receipt.object_id, None).await.unwrap()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ranged_reads_decrypt_from_the_right_counter() {
    let fake = MegaFake::start().await;
    let r = router(&fake);
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i.wrapping_mul(31) % 251) as u8).collect();
    let receipt = r.write("m", ByteStream::from_bytes(data.clone()), WriteMeta::new("r.bin")).await.unwrap();
    for (s, e) in [(0u64, 0u64), (1, 17), (15, 16), (131_071, 131_073), (1_000_003, 1_499_999), (7, 2_000_000)] {
        let got = collect(r.read("m", &receipt.object_id, Some(ByteRange::inclusive(s, e))).await.unwrap()).await;
        let end = (e as usize + 1).min(data.len());
        assert_eq!(got.unwrap(), &data[s as usize..end], "range {s}-{e}");
    }
}

fn module(fake: &MegaFake) -> csal_mega::MegaModule {
    csal_mega::MegaModule::new(serde_json::from_value(config(fake)).unwrap()).unwrap()
}

/// Real accounts (with an RSA key pair) log in with `csid` + `privk`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mega_rsa_passes_conformance_on_fake() {
    let fake = MegaFake::start_rsa().await;
    let mut bad = config(&fake);
    bad["password"] = "not-the-password-123".into();
    let target = csal_conformance::Target::new("mega-rsa@fake", "mega", config(&fake))
        .large_size(3 * 1024 * 1024 + 12_345)
        .bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_session_account_writes_and_reads_back() {
    let fake = MegaFake::start_rsa().await;
    let r = router(&fake);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    let receipt = r.write("m", ByteStream::from_bytes(data.clone()), WriteMeta::new("cam/rsa.bin")).await.unwrap();
    assert_eq!(collect(r.read("m", &receipt.object_id, None).await.unwrap()).await.unwrap(), data);
    assert_eq!(r.stat("m", &receipt.object_id).await.unwrap().size, data.len() as u64);
    assert_eq!(fake.command_count("us"), 1, "one login, RSA session reused");
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_account_with_wrong_password_is_auth() {
    let fake = MegaFake::start_rsa().await;
    let mut cfg = config(&fake);
    cfg["password"] = "wrong-password-456".into();
    let m = csal_mega::MegaModule::new(serde_json::from_value(cfg).unwrap()).unwrap();
    use csal_core::StorageModule;
    let err = m.validate().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupted_private_key_is_a_clear_auth_error() {
    let fake = MegaFake::start_rsa().await;
    fake.corrupt_privk();
    use csal_core::StorageModule;
    let err = module(&fake).validate().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("private key"), "{err}");
}

/// Writes, reads and stats through one instance use the cached node tree:
/// one `f` for the whole sequence, not one per operation.
#[tokio::test(flavor = "multi_thread")]
async fn sequential_operations_reuse_the_cached_node_tree() {
    use csal_core::StorageModule;
    let fake = MegaFake::start().await;
    let m = module(&fake);
    let mut ids = Vec::new();
    for i in 0..8u8 {
        let body = ByteStream::from_bytes(vec![i; 1000 + usize::from(i)]);
        ids.push(m.write(body, WriteMeta::new("cam/seg.bin")).await.unwrap().object_id);
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(collect(m.read(id, None).await.unwrap()).await.unwrap(), vec![i as u8; 1000 + i]);
        assert_eq!(m.stat(id).await.unwrap().size, 1000 + i as u64);
    }
    m.delete(&ids[0]).await.unwrap();
    assert_eq!(m.stat(&ids[1]).await.unwrap().size, 1001);
    assert_eq!(fake.command_count("f"), 1, "8 writes, 16 reads/stats and a delete fetched the tree more than once");
    // The deletion was applied to the cache: a miss, refetched once.
    assert_eq!(m.stat(&ids[0]).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(fake.command_count("f"), 2);
    // A new folder is looked up in a fresh tree once before it is created
    // (another client may have made it); writes into it then hit the cache.
    for _ in 0..3 {
        m.write(ByteStream::from_bytes(vec![9u8; 10]), WriteMeta::new("cam2/seg.bin")).await.unwrap();
    }
    assert_eq!(fake.command_count("f"), 3);
}

/// The cache misses what another client did; a miss refetches, and a
/// cached node deleted elsewhere is dropped when the server says ENOENT.
#[tokio::test(flavor = "multi_thread")]
async fn objects_changed_by_another_client_are_seen() {
    use csal_core::StorageModule;
    let fake = MegaFake::start().await;
    let (a, b) = (module(&fake), module(&fake));
    let mine = a.write(ByteStream::from_bytes(vec![1u8; 10]), WriteMeta::new("x/mine.bin")).await.unwrap().object_id;
    let before = fake.command_count("f");
    let theirs = b.write(ByteStream::from_bytes(vec![2u8; 20]), WriteMeta::new("x/theirs.bin")).await.unwrap();
    assert_eq!(a.stat(&theirs.object_id).await.unwrap().size, 20, "miss must refetch before NotFound");
    assert_eq!(collect(a.read(&theirs.object_id, None).await.unwrap()).await.unwrap(), vec![2u8; 20]);
    // b deletes a's object; a's cache still has it, the download says ENOENT.
    b.delete(&mine).await.unwrap();
    assert_eq!(a.read(&mine, None).await.err().map(|e| e.kind()), Some(ErrorKind::NotFound));
    assert_eq!(a.stat(&mine).await.unwrap_err().kind(), ErrorKind::NotFound);
    // A listing's first page is always fresh.
    let page = a.list(&csal_core::ListRequest::default()).await.unwrap();
    let ids: Vec<&str> = page.objects.iter().map(|o| o.object_id.as_str()).collect();
    assert_eq!(ids, vec![theirs.object_id.as_str()]);
    assert!(fake.command_count("f") > before);
}

/// Another client deletes the folders a cached handle points at: the file
/// node is created in freshly made folders, nothing is lost.
#[tokio::test(flavor = "multi_thread")]
async fn write_into_a_folder_deleted_elsewhere_recreates_it() {
    use csal_core::StorageModule;
    let fake = MegaFake::start().await;
    let (a, b) = (module(&fake), module(&fake));
    let first = a.write(ByteStream::from_bytes(vec![1u8; 10]), WriteMeta::new("d/one.bin")).await.unwrap().object_id;
    b.delete(&first).await.unwrap();
    fake.delete_empty_folders();
    let second = a.write(ByteStream::from_bytes(vec![3u8; 30]), WriteMeta::new("d/two.bin")).await.unwrap();
    assert_eq!(collect(b.read(&second.object_id, None).await.unwrap()).await.unwrap(), vec![3u8; 30]);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_storage_quota_left_and_degrades_when_nearly_full() {
    let fake = MegaFake::start().await;
    fake.set_quota(100_000);
    let r = router(&fake);
    r.write("m", ByteStream::from_bytes(vec![3u8; 40_000]), WriteMeta::new("q/a.bin")).await.unwrap();
    let report = r.health_check("m").await.unwrap();
    assert_eq!(report.status, csal_core::HealthStatus::Ok, "{report:?}");
    assert_eq!(report.free_bytes(), Some(60_000), "mstrg less cstrg: {report:?}");
    assert_eq!(report.details[csal_http::QUOTA_TOTAL_BYTES], 100_000);

    r.write("m", ByteStream::from_bytes(vec![4u8; 52_000]), WriteMeta::new("q/b.bin")).await.unwrap();
    let report = r.health_check("m").await.unwrap();
    assert_eq!(report.status, csal_core::HealthStatus::Degraded, "{report:?}");
    assert_eq!(report.free_bytes(), Some(8_000));
}

/// A private CA (`ca_file`): the fake behind csal-testkit's TLS proxy
/// (`https://127.0.0.1:PORT`, certificate signed by a CA made by the test),
/// token endpoint included; trusted only with `ca_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mega_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let fake = MegaFake::start().await;
    let proxy = csal_testkit::tls::TlsProxy::in_front_of(&fake.url()).await;
    let (with_ca, without_ca) = proxy.configs(&config(&fake), &["api_url"]);
    csal_conformance::tls::private_ca("mega", with_ca, without_ca).await;
}
