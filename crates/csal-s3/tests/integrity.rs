//! Verified reads on real S3 servers: bytes changed behind CSAL's back
//! (same length, one bit flipped, the object's metadata kept as bit rot
//! would) end a full read with `Integrity`, never as good bytes.

csal_core::link_providers!(csal_s3);

mod common;

use common::{BUCKET, Server};
use csal_core::{ByteStream, ErrorKind, InstanceDefinition, StorageModule, StorageRouter, WriteMeta, WriteReceipt};

/// Rewrite an object in place with one bit flipped, keeping its user
/// metadata and content type (a direct SDK PUT, not through CSAL).
async fn flip_a_bit(server: &Server, object_id: &str, at: usize) -> Vec<u8> {
    let sdk = server.module(BUCKET).sdk_client().clone();
    let head = sdk.head_object().bucket(BUCKET).key(object_id).send().await.unwrap();
    let got = sdk.get_object().bucket(BUCKET).key(object_id).send().await.unwrap();
    let mut bytes = got.body.collect().await.unwrap().into_bytes().to_vec();
    bytes[at] ^= 0x01;
    sdk.put_object()
        .bucket(BUCKET)
        .key(object_id)
        .set_metadata(head.metadata().cloned())
        .set_content_type(head.content_type().map(str::to_owned))
        .body(aws_sdk_s3::primitives::ByteStream::from(bytes.clone()))
        .send()
        .await
        .unwrap();
    bytes
}

async fn rot_is_caught(server: Server) {
    server.ensure_bucket(BUCKET).await;
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("s3", "s3", server.config(BUCKET))]);
    let dir = format!("rot-{}", ulid::Ulid::new().to_string().to_lowercase());
    let small: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    // Over the 5 MiB part size: a multipart object (no kept checksum).
    let large: Vec<u8> = (0..6 * 1024 * 1024u32).map(|i| (i % 241) as u8).collect();
    let write = |data: &Vec<u8>, name: &str| {
        router.write("s3", ByteStream::from_bytes(data.clone()), WriteMeta::new(format!("{dir}/{name}")))
    };
    let read_all = |body: ByteStream| body.collect_limited(16 << 20);
    let kept = |r: &WriteReceipt| r.checksum.clone().unwrap();

    let intact = write(&small, "intact.bin").await.unwrap();
    let back = read_all(router.read("s3", &intact.object_id, None).await.unwrap()).await.unwrap();
    assert_eq!(back.as_ref(), small.as_slice());
    let back = read_all(router.read_verified("s3", &intact.object_id, &kept(&intact)).await.unwrap()).await.unwrap();
    assert_eq!(back.as_ref(), small.as_slice());

    let rotten = write(&small, "rotten.bin").await.unwrap();
    flip_a_bit(&server, &rotten.object_id, 100_000).await;
    let plain = read_all(router.read("s3", &rotten.object_id, None).await.unwrap()).await;
    assert_eq!(plain.map(|b| b.len()).unwrap_err().kind(), ErrorKind::Integrity, "against the kept CRC32C");
    let checked = read_all(router.read_verified("s3", &rotten.object_id, &kept(&rotten)).await.unwrap()).await;
    assert_eq!(checked.map(|b| b.len()).unwrap_err().kind(), ErrorKind::Integrity, "against the caller's CRC32C");
    let stat = router.stat("s3", &rotten.object_id).await.unwrap();
    assert_eq!(stat.checksum, Some(kept(&rotten)), "stat shows the kept CRC32C");
    assert!(stat.metadata.is_empty(), "the internal key is not user metadata: {:?}", stat.metadata);

    let big = write(&large, "big.bin").await.unwrap();
    flip_a_bit(&server, &big.object_id, 5_500_000).await;
    let checked = read_all(router.read_verified("s3", &big.object_id, &kept(&big)).await.unwrap()).await;
    assert_eq!(checked.map(|b| b.len()).unwrap_err().kind(), ErrorKind::Integrity, "multipart, caller's CRC32C");

    for r in [intact, rotten, big] {
        router.delete("s3", &r.object_id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn flipped_bit_is_an_integrity_error_on_moto() {
    let Some(server) = Server::moto() else { return };
    rot_is_caught(server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flipped_bit_is_an_integrity_error_on_s3sfs() {
    let Some(server) = Server::s3sfs("s3-integrity@s3s-fs") else { return };
    rot_is_caught(server).await;
}

/// The path S3 takes above 5 GiB (a multipart upload of `UploadPartCopy`
/// ranges), forced on a 12 MiB object: three 5 MiB-or-less parts, the same
/// bytes, a fresh id, the source's kept CRC32C carried along.
#[tokio::test(flavor = "multi_thread")]
async fn copy_in_parts_gives_identical_bytes_on_moto() {
    let Some(server) = Server::moto() else { return };
    server.ensure_bucket(BUCKET).await;
    let module = server.module(BUCKET);
    let data: Vec<u8> = (0..12 * 1024 * 1024 + 77u32).map(|i| (i % 239) as u8).collect();
    let dir = format!("copy-{}", ulid::Ulid::new().to_string().to_lowercase());
    let source =
        module.write(ByteStream::from_bytes(data.clone()), WriteMeta::new(format!("{dir}/a.bin"))).await.unwrap();
    let copy = module.copy_in_parts_above(&source.object_id, WriteMeta::new(format!("{dir}/a.bin")), 0).await.unwrap();
    assert_ne!(copy.object_id, source.object_id);
    assert_eq!(copy.size, data.len() as u64);
    let back = module.read(&copy.object_id, None).await.unwrap().collect_limited(16 << 20).await.unwrap();
    assert!(back.as_ref() == data.as_slice(), "the copy's bytes differ");

    let small = module
        .write(ByteStream::from_bytes(data[..1000].to_vec()), WriteMeta::new(format!("{dir}/s.bin")))
        .await
        .unwrap();
    let copy_small =
        module.copy_in_parts_above(&small.object_id, WriteMeta::new(format!("{dir}/s.bin")), 0).await.unwrap();
    let kept = module.stat(&copy_small.object_id).await.unwrap().checksum;
    assert_eq!(kept, Some(csal_core::Checksum::crc32c(crc32c::crc32c(&data[..1000]))), "kept CRC32C carried along");
    let uploads = module.sdk_client().list_multipart_uploads().bucket(BUCKET).prefix(&dir).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "multipart uploads left behind");
    for id in [source.object_id, copy.object_id, small.object_id, copy_small.object_id] {
        module.delete(&id).await.unwrap();
    }
}
