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
