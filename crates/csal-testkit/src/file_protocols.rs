//! Scenarios shared by the file-protocol providers (sftp, ftp) whose tests
//! can reach the server's folders on this machine (`CSAL_TEST_*_HOME`).
//! Each takes a `StorageRouter` with the instance under test.

use std::path::Path;
use std::time::{Duration, SystemTime};

use csal_core::{ByteStream, Checksum, ErrorKind, HealthStatus, ListRequest, StorageModule, StorageRouter, WriteMeta};

/// Leftovers of uploads whose connection died, planted in
/// `<base_path>/.csal-tmp` as the server's user would have left them (two
/// older than a day, one fresh), then one health check: it must remove
/// exactly the two old ones, say so in its details, and listing must show
/// only the real object.
pub async fn health_check_sweeps_old_temp_files(router: &StorageRouter, key: &str, base_path: &Path) {
    let receipt = router.write(key, ByteStream::from_bytes(&b"kept"[..]), WriteMeta::new("cam/a.bin")).await.unwrap();
    let tmp = base_path.join(".csal-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(base_path).unwrap());
    std::os::unix::fs::chown(&tmp, Some(owner), None).unwrap();
    for name in ["01HZZZZZZZZZZZZZZZZZZZZZZZ.part", "old-2.part", "live.part"] {
        let path = tmp.join(name);
        std::fs::write(&path, b"half a segment").unwrap();
        std::os::unix::fs::chown(&path, Some(owner), None).unwrap();
        if name != "live.part" {
            let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
            std::fs::File::options().write(true).open(&path).unwrap().set_modified(two_days_ago).unwrap();
        }
    }

    let report = router.health_check(key).await.unwrap();
    assert_eq!(report.status, HealthStatus::Ok, "{report:?}");
    assert_eq!(report.details.get("stale_temp_files_removed"), Some(&serde_json::Value::from(2)), "{report:?}");
    let left: Vec<String> =
        std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, ["live.part"], "a recent temp file (a live upload) must stay");
    // Temp files are never objects.
    let all = router.list(key, &ListRequest::new("")).await.unwrap();
    let ids: Vec<&str> = all.objects.iter().map(|o| o.object_id.as_str()).collect();
    assert_eq!(ids, [receipt.object_id.as_str()]);
}

/// `inner`'s base folder is a sub-folder of `outer`'s; an object written
/// through `outer` beside it must stay out of reach: every listing whose
/// path or prefix climbs out is `InvalidInput`, through the router's layer
/// and straight at the provider.
pub async fn list_prefixes_cannot_leave_the_base(inner: &StorageRouter, outer: &StorageRouter, key: &str) {
    outer.write(key, ByteStream::from_bytes(&b"outside"[..]), WriteMeta::new("secret/x.bin")).await.unwrap();
    inner.write(key, ByteStream::from_bytes(&b"inside"[..]), WriteMeta::new("cam/a.bin")).await.unwrap();
    let direct = inner.module(key).unwrap().inner().clone();
    for (path, prefix) in [("", "../secret/"), ("..", ""), ("cam/../..", ""), ("", "/etc/"), ("", "../../etc/")] {
        let request = ListRequest::new(path).with_prefix(prefix);
        let e = inner.list(key, &request).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "router, {path:?} {prefix:?}: {e}");
        let e = direct.list(&request).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "provider, {path:?} {prefix:?}: {e}");
    }
}

/// Bit rot behind CSAL's back: one byte of a stored object's file under
/// `base_path` is flipped in place (same length, same inode). A full read
/// must then end with `Integrity` (never deliver the bad bytes as good):
/// always against the checksum the caller kept (the write's receipt), and
/// without one too when the provider keeps checksums (`verified_reads`).
/// An intact object reads back whole on both paths.
pub async fn flipped_byte_is_an_integrity_error(router: &StorageRouter, key: &str, base_path: &Path) {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let write = |hint: &'static str| router.write(key, ByteStream::from_bytes(data.clone()), WriteMeta::new(hint));
    let (intact, rotten) = (write("cam/intact.bin").await.unwrap(), write("cam/rotten.bin").await.unwrap());
    let kept = |r: &csal_core::WriteReceipt| r.checksum.clone().expect("the router fills in the CRC32C");
    assert_eq!(kept(&intact), Checksum::crc32c(crc32c::crc32c(&data)));

    let path = base_path.join(&rotten.object_id);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[150_000] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap(); // truncate + write: same file, same attributes

    let read_all = |body: ByteStream| body.collect_limited(1 << 20);
    let good = read_all(router.read_verified(key, &intact.object_id, &kept(&intact)).await.unwrap()).await.unwrap();
    assert_eq!(good.as_ref(), data.as_slice());
    let good = read_all(router.read(key, &intact.object_id, None).await.unwrap()).await.unwrap();
    assert_eq!(good.as_ref(), data.as_slice());

    let bad = read_all(router.read_verified(key, &rotten.object_id, &kept(&rotten)).await.unwrap()).await;
    assert_eq!(bad.map(|b| b.len()).unwrap_err().kind(), ErrorKind::Integrity, "caller-passed checksum");
    let plain = read_all(router.read(key, &rotten.object_id, None).await.unwrap()).await;
    let verified_reads = router.module(key).unwrap().capabilities().verified_reads;
    if verified_reads {
        assert_eq!(plain.map(|b| b.len()).unwrap_err().kind(), ErrorKind::Integrity, "stored checksum");
    } else {
        // Documented: without a kept checksum a plain read cannot tell.
        assert_eq!(plain.unwrap().len(), data.len());
    }
    // A range read is not verified (documented): it still returns the bytes.
    let range = csal_core::ByteRange::inclusive(149_999, 150_001);
    let part = read_all(router.read(key, &rotten.object_id, Some(range)).await.unwrap()).await.unwrap();
    assert_eq!(part.as_ref(), &bytes[149_999..=150_001]);
}
