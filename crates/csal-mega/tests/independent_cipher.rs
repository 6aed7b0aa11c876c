//! "Done when" of issue 9 for MEGA: the bytes the fake stores are what any
//! MEGA client would decrypt. This test decrypts them with its OWN
//! implementation of MEGA's file cipher (AES-128 block function only: ECB
//! for the node key, CTR and CBC written out by hand here), not with the
//! provider's code.

csal_core::link_providers!(csal_mega);

use aes::Aes128;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use base64::Engine;
use csal_core::{ByteStream, InstanceDefinition, StorageRouter, WriteMeta};

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn enc(c: &Aes128, b: [u8; 16]) -> [u8; 16] {
    let mut a = b.into();
    c.encrypt_block(&mut a);
    a.into()
}

fn dec(c: &Aes128, b: [u8; 16]) -> [u8; 16] {
    let mut a = b.into();
    c.decrypt_block(&mut a);
    a.into()
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_ciphertext_decrypts_with_an_independent_mega_file_cipher() {
    let fake = csal_fakes::mega::MegaFake::start().await;
    let config = serde_json::json!({
        "api_url": fake.url(), "email": csal_fakes::mega::EMAIL, "password": csal_fakes::mega::PASSWORD,
    });
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("m", "mega", config)]);
    let plain: Vec<u8> = (0..2_345_679u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let receipt =
        router.write("m", ByteStream::from_bytes(plain.clone()), WriteMeta::new("cam1/seg.mp4")).await.unwrap();

    let nodes = fake.file_nodes();
    assert_eq!(nodes.len(), 1);
    let node = &nodes[0];
    let stored = fake.ciphertext(&node.handle).unwrap();
    assert_eq!(stored.len(), plain.len());
    assert_ne!(&stored[..64], &plain[..64], "the fake holds plaintext");

    // Node key: AES-ECB(master) of (k ^ (nonce||mac)) || nonce || mac.
    let master = Aes128::new(&fake.master_key().into());
    let mut node_key = unb64(&node.key);
    assert_eq!(node_key.len(), 32);
    for block in node_key.chunks_exact_mut(16) {
        let b: [u8; 16] = block.try_into().unwrap();
        block.copy_from_slice(&dec(&master, b));
    }
    let mut file_key = [0u8; 16];
    for i in 0..16 {
        file_key[i] = node_key[i] ^ node_key[16 + i];
    }
    let nonce: [u8; 8] = node_key[16..24].try_into().unwrap();
    let file = Aes128::new(&file_key.into());

    // AES-128-CTR by hand: counter block i = nonce || i (big-endian u64).
    let mut decrypted = Vec::with_capacity(stored.len());
    for (i, block) in stored.chunks(16).enumerate() {
        let mut counter = [0u8; 16];
        counter[..8].copy_from_slice(&nonce);
        counter[8..].copy_from_slice(&(i as u64).to_be_bytes());
        let ks = enc(&file, counter);
        decrypted.extend(block.iter().zip(ks.iter()).map(|(c, k)| c ^ k));
    }
    assert!(decrypted == plain, "independent CTR decryption does not give the written bytes");

    // Attributes: AES-CBC (zero IV) of "MEGA{json}" with the file key.
    let attr = unb64(&node.attr);
    let mut prev = [0u8; 16];
    let mut text = Vec::new();
    for block in attr.chunks_exact(16) {
        let b: [u8; 16] = block.try_into().unwrap();
        let p = dec(&file, b);
        text.extend(p.iter().zip(prev.iter()).map(|(x, y)| x ^ y));
        prev = b;
    }
    let text = String::from_utf8(text).unwrap();
    let json_text = text.trim_end_matches('\0').strip_prefix("MEGA").expect("MEGA attribute prefix");
    let attrs: serde_json::Value = serde_json::from_str(json_text).unwrap();
    assert_eq!(attrs["n"].as_str().unwrap(), receipt.object_id.rsplit('/').next().unwrap());
}
