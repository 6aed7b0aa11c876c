//! Upload (MEGA SDK docs / white paper, "upload"): `u` with the size gives an
//! upload URL; the ciphertext is POSTed to `<url>/<offset>` in MEGA chunk
//! sizes; the last POST answers a completion handle, which `p` turns into a
//! file node (encrypted attributes + node key) in the parent folder.
//! Memory: one chunk (<= 1 MiB). A body of unknown size is encrypted into a
//! temporary file first (MEGA needs the size up front); only ciphertext
//! touches the disk. Nothing is visible before `p`, so a failed upload
//! leaves no object.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use csal_core::{ByteStream, Result, StorageError, WriteMeta, WriteReceipt, object_id_from_hint};

use aes::cipher::StreamCipher;

use crate::client::MegaClient;
use crate::crypto::{self, Key, MacState};
use crate::error;

async fn next_chunk(
    stream: &mut BoxStream<'static, Result<Bytes>>,
    buf: &mut BytesMut,
    want: usize,
    ended: &mut bool,
) -> Result<Option<Bytes>> {
    while buf.len() < want && !*ended {
        match stream.next().await {
            Some(chunk) => buf.extend_from_slice(&chunk?),
            None => *ended = true,
        }
    }
    if buf.is_empty() {
        return Ok(None);
    }
    let n = want.min(buf.len());
    Ok(Some(buf.split_to(n).freeze()))
}

pub(crate) async fn write(client: &MegaClient, body: ByteStream, meta: &WriteMeta) -> Result<WriteReceipt> {
    let object_id = object_id_from_hint(&meta.key_hint);
    let dir: Vec<String> = match object_id.rsplit_once('/') {
        Some((d, _)) => d.split('/').map(str::to_owned).collect(),
        None => Vec::new(),
    };
    let parent = client.ensure_folder(&dir).await?;
    // No existence check: MEGA never overwrites (a folder may hold several
    // nodes of one name), and the name carries 80 random bits, so a clash
    // could at worst make an id ambiguous, with probability ~2^-80. Skipping
    // the check saves one full tree fetch per write.
    let name = object_id.rsplit('/').next().unwrap_or(&object_id).to_owned();

    let key: Key = crypto::random();
    let nonce: [u8; 8] = crypto::random();
    let mut mac = MacState::new(&key, &nonce);
    let mut ctr = crypto::ctr_at(&key, &nonce, 0);
    let declared = body.size();
    let mut stream: BoxStream<'static, Result<Bytes>> = body.boxed();
    let mut buf = BytesMut::new();
    let mut ended = false;
    let mut index = 0u64;
    let mut encrypt_next = async |stream: &mut BoxStream<'static, Result<Bytes>>| -> Result<Option<Bytes>> {
        let want = crypto::chunk_size(index) as usize;
        let Some(plain) = next_chunk(stream, &mut buf, want, &mut ended).await? else { return Ok(None) };
        index += 1;
        mac.update(&plain);
        let mut data = plain.to_vec();
        ctr.apply_keystream(&mut data);
        Ok(Some(Bytes::from(data)))
    };

    let handle = match declared {
        Some(size) => {
            let url = upload_url(client, size).await?;
            let mut offset = 0u64;
            let mut handle = None;
            while let Some(chunk) = encrypt_next(&mut stream).await? {
                let len = chunk.len() as u64;
                if offset + len > size {
                    return Err(StorageError::integrity("mega upload: body is longer than its declared size"));
                }
                handle = post_chunk(client, &url, offset, chunk).await?;
                offset += len;
            }
            if offset != size {
                return Err(StorageError::integrity(format!("mega upload: body ended at {offset} of {size} bytes")));
            }
            if size == 0 {
                handle = post_chunk(client, &url, 0, Bytes::new()).await?;
            }
            handle
        }
        None => {
            let spool = tempfile::tempfile()
                .map_err(|e| StorageError::transient("mega upload: cannot create a spool file").with_source(e))?;
            let mut file = tokio::fs::File::from_std(spool);
            let mut total = 0u64;
            while let Some(chunk) = encrypt_next(&mut stream).await? {
                total += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            let mut file = file.into_std().await;
            std::io::Seek::rewind(&mut file)?;
            let mut file = tokio::fs::File::from_std(file);
            let url = upload_url(client, total).await?;
            let mut offset = 0u64;
            let mut handle = None;
            let mut i = 0u64;
            while offset < total {
                let len = crypto::chunk_size(i).min(total - offset) as usize;
                let mut chunk = vec![0u8; len];
                file.read_exact(&mut chunk).await?;
                handle = post_chunk(client, &url, offset, Bytes::from(chunk)).await?;
                offset += len as u64;
                i += 1;
            }
            if total == 0 {
                handle = post_chunk(client, &url, 0, Bytes::new()).await?;
            }
            handle
        }
    };
    let handle = handle.ok_or_else(|| StorageError::transient("mega upload: no completion handle"))?;
    let size = mac_size(&mac);
    let meta_mac = mac.finish();
    let node_key = crypto::pack_file_key(&key, &nonce, &meta_mac);
    let session = client.session(false).await?;
    let mut enc = node_key;
    crypto::ecb_encrypt(&session.master, &mut enc);
    let attr = crypto::encrypt_attr(&crate::client::attr_key(&node_key), &json!({"n": name}));
    let item = json!({"h": handle, "t": 0, "a": attr, "k": crypto::b64(&enc)});
    client.put_file(&dir, parent, item).await?;
    Ok(WriteReceipt { object_id, size, checksum: None, etag: None, instance: None })
}

fn mac_size(mac: &MacState) -> u64 {
    mac.position()
}

async fn upload_url(client: &MegaClient, size: u64) -> Result<String> {
    let (v, _) = client.call("upload", json!({"a": "u", "s": size})).await?;
    v.get("p")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| StorageError::permanent("mega u: no upload URL"))
}

/// POST one ciphertext chunk; returns the completion handle if the server
/// sent one (after the last chunk).
async fn post_chunk(client: &MegaClient, url: &str, offset: u64, chunk: Bytes) -> Result<Option<String>> {
    let resp = client
        .http
        .post(format!("{url}/{offset}"))
        .timeout(client.request_timeout)
        .body(chunk)
        .send()
        .await
        .map_err(|e| error::from_transport("upload chunk", e))?;
    if !resp.status().is_success() {
        return Err(error::from_status("upload chunk", resp.status(), resp.headers()));
    }
    let text = csal_http::read_answer(resp, "mega upload chunk").await?;
    let text = String::from_utf8_lossy(&text);
    let text = text.trim();
    if let Ok(code) = text.parse::<i64>()
        && code < 0
    {
        return Err(error::from_code("upload chunk", code));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}
