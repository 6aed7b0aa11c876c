//! Scenarios shared by the file-protocol providers (sftp, ftp) whose tests
//! can reach the server's folders on this machine (`CSAL_TEST_*_HOME`).
//! Each takes a `StorageRouter` with the instance under test.

use std::path::Path;
use std::time::{Duration, SystemTime};

use csal_core::{ByteStream, ErrorKind, HealthStatus, ListRequest, StorageRouter, WriteMeta};

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
