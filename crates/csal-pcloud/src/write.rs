//! Uploads. Small bodies (one part): one streaming `uploadfile` with
//! `nopartial=1` (a broken connection leaves no partial file) and
//! `renameifexists=1` (a name clash is renamed by pCloud, never overwritten;
//! the id we return is the name pCloud reports). Larger bodies: an upload
//! session (`upload_create`, `upload_write` at increasing `uploadoffset`,
//! `upload_save`), one part in memory at a time; a failed session is
//! deleted with `upload_delete`.
//! Docs: https://docs.pcloud.com/methods/file/uploadfile.html and
//! https://docs.pcloud.com/methods/upload/ (upload_create/write/save).

use futures::StreamExt;
use serde_json::Value;

use csal_core::{ByteStream, ErrorKind, Result, StorageError, WriteMeta, WriteReceipt, object_id_from_hint};

use crate::client::{Body, PcloudClient};

fn split_id(id: &str) -> (&str, &str) {
    match id.rsplit_once('/') {
        Some((d, n)) => (d, n),
        None => ("", id),
    }
}

fn join_id(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") }
}

pub(crate) async fn write(client: &PcloudClient, body: ByteStream, meta: &WriteMeta) -> Result<WriteReceipt> {
    let object_id = object_id_from_hint(&meta.key_hint);
    let (dir, name) = split_id(&object_id);
    let folder = if dir.is_empty() { client.root.clone() } else { client.path_of(dir) };
    let mut parts = Box::pin(body.into_parts(client.part_size));
    let first = parts.next().await.transpose()?;
    let second = match first {
        Some(_) => parts.next().await.transpose()?,
        None => None,
    };
    client.ensure_folder(&folder).await?;

    let Some(second) = second else {
        let data = first.unwrap_or_default();
        let size = data.len() as u64;
        let params = [
            ("path", folder.clone()),
            ("filename", name.to_owned()),
            ("nopartial", "1".to_owned()),
            ("renameifexists", "1".to_owned()),
        ];
        let v = client.call("uploadfile", &params, Body::Bytes(data)).await?;
        let stored = v
            .get("metadata")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .ok_or_else(|| StorageError::permanent("pcloud uploadfile: no metadata in the answer"))?;
        let stored_name = stored.get("name").and_then(Value::as_str).unwrap_or(name);
        let stored_size = stored.get("size").and_then(Value::as_u64).unwrap_or(size);
        if stored_size != size {
            return Err(StorageError::integrity(format!("pcloud uploadfile stored {stored_size} of {size} bytes")));
        }
        return Ok(WriteReceipt {
            object_id: join_id(dir, stored_name),
            size,
            checksum: None,
            etag: None,
            instance: None,
        });
    };

    // Upload session. The name carries 80 random bits; we still check it is
    // free right before saving (upload_save replaces an existing file, and
    // the check and the save are not atomic: see docs/providers/pcloud.md).
    let v = client.call("upload_create", &[], Body::None).await?;
    let upload_id = v
        .get("uploadid")
        .and_then(Value::as_u64)
        .ok_or_else(|| StorageError::permanent("pcloud upload_create: no uploadid"))?;
    let result = async {
        let mut offset = 0u64;
        let mut pending = vec![first.unwrap_or_default(), second];
        loop {
            for part in pending.drain(..) {
                let len = part.len() as u64;
                let params = [("uploadid", upload_id.to_string()), ("uploadoffset", offset.to_string())];
                client.call("upload_write", &params, Body::Bytes(part)).await?;
                offset += len;
            }
            match parts.next().await {
                Some(part) => pending.push(part?),
                None => break,
            }
        }
        let target = format!("{folder}/{name}");
        match client.stat_path(&target).await {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Ok(_) => return Err(StorageError::already_exists(format!("pcloud: {object_id} appeared during upload"))),
            Err(e) => return Err(e),
        }
        let params = [
            ("uploadid", upload_id.to_string()),
            ("path", folder.clone()),
            ("name", name.to_owned()),
            ("renameifexists", "1".to_owned()),
        ];
        let v = client.call("upload_save", &params, Body::None).await?;
        let stored = v.get("metadata").cloned().unwrap_or(Value::Null);
        let stored_size = stored.get("size").and_then(Value::as_u64).unwrap_or(offset);
        if stored_size != offset {
            return Err(StorageError::integrity(format!("pcloud upload_save stored {stored_size} of {offset} bytes")));
        }
        let stored_name = stored.get("name").and_then(Value::as_str).unwrap_or(name).to_owned();
        Ok((offset, stored_name))
    }
    .await;
    match result {
        Ok((size, stored_name)) => {
            Ok(WriteReceipt { object_id: join_id(dir, &stored_name), size, checksum: None, etag: None, instance: None })
        }
        Err(e) => {
            if let Err(abort) = client.call("upload_delete", &[("uploadid", upload_id.to_string())], Body::None).await {
                tracing::warn!(error = %abort, "pcloud: could not delete a failed upload session");
            }
            Err(e)
        }
    }
}
