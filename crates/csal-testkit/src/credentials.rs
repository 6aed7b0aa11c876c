//! Checks shared by the tests of credential sources (s3's AWS default
//! chain, azure_blob's Entra ID tokens): the credentials really reach the
//! server, every kind of call works with them, and bad ones fail as `Auth`.

use bytes::Bytes;
use csal_core::{ByteStream, ErrorKind, ListRequest, StorageError, StorageModule, WriteMeta};

/// Write, read back, list, stat and delete one object under a fresh folder:
/// every request kind a module signs, with the credentials under test.
pub async fn write_read_list_delete(module: &dyn StorageModule, base: &str) {
    let folder = crate::unique_folder(base);
    let data = Bytes::from(format!("written with {base}").repeat(100));
    let receipt = module
        .write(ByteStream::from_bytes(data.clone()), WriteMeta::new(format!("{folder}/clip.ts")))
        .await
        .unwrap_or_else(|e| panic!("write with {base}: {e} {e:?}"));
    let back = module.read(&receipt.object_id, None).await.expect("read").collect_limited(1 << 20).await.expect("body");
    assert_eq!(back, data, "read back what was written");
    let page = module.list(&ListRequest::new(&folder)).await.expect("list");
    let ids: Vec<&str> = page.objects.iter().map(|o| o.object_id.as_str()).collect();
    assert_eq!(ids, [receipt.object_id.as_str()], "list shows the one object");
    assert_eq!(module.stat(&receipt.object_id).await.expect("stat").size, data.len() as u64);
    module.delete(&receipt.object_id).await.expect("delete");
    let gone = module.stat(&receipt.object_id).await.expect_err("deleted object has no stat");
    assert_eq!(gone.kind(), ErrorKind::NotFound);
}

/// A write with credentials the server (or the credential source) refuses
/// fails as `Auth`, and its message holds none of `secrets`.
pub async fn refused_write_is_auth(module: &dyn StorageModule, secrets: &[&str]) -> StorageError {
    let err = module
        .write(ByteStream::from_bytes(Bytes::from_static(b"x")), WriteMeta::new("refused/clip.ts"))
        .await
        .expect_err("a write with refused credentials must fail");
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    let shown = format!("{err} {err:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "a secret leaked into the error: {shown}");
    }
    err
}
