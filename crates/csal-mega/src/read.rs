//! Download (`g` with `g=1` gives a temporary URL; a byte range is asked as
//! `<url>/<start>-<end>`): ciphertext is decrypted with AES-128-CTR from
//! counter block `start/16`. A full read also recomputes the chunk MACs and
//! fails with `Integrity` if the meta-MAC does not match the node key's.
//! The node comes from the cached tree; if `g` says it no longer exists,
//! the cache is dropped and the id resolved once more from a fresh tree.

use futures::StreamExt;
use serde_json::{Value, json};

use aes::cipher::StreamCipher;
use csal_core::{ByteRange, ByteStream, ErrorKind, Result, StorageError};

use crate::client::MegaClient;
use crate::crypto::{self, MacState};
use crate::error;

pub(crate) async fn read(client: &MegaClient, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream> {
    let mut node = client.file(object_id).await?;
    let mut retried = false;
    let (span, v) = loop {
        let span = match range {
            Some(r) => r.resolve(node.size)?,
            None => 0..node.size,
        };
        if span.is_empty() {
            return Ok(ByteStream::empty());
        }
        match client.call("download", json!({"a": "g", "g": 1, "n": node.handle})).await {
            Ok((v, _)) => break (span, v),
            // The cached node is gone: look the id up in a fresh tree once.
            Err(e) if e.kind() == ErrorKind::NotFound && !retried => {
                retried = true;
                client.invalidate();
                let again = client.file(object_id).await?;
                if again.handle == node.handle {
                    return Err(e);
                }
                node = again;
            }
            Err(e) => return Err(e),
        }
    };
    let key32: [u8; 32] =
        node.key.as_slice().try_into().map_err(|_| StorageError::integrity("mega: file node key is not 32 bytes"))?;
    let (key, nonce, meta_mac) = crypto::unpack_file_key(&key32);
    let size = node.size;
    let url = v.get("g").and_then(Value::as_str).ok_or_else(|| StorageError::permanent("mega g: no download URL"))?;
    let full = span.start == 0 && span.end == size;
    let aligned = span.start - span.start % 16;
    let target = if full { url.to_owned() } else { format!("{url}/{aligned}-{}", span.end - 1) };
    let resp = client.http.get(target).send().await.map_err(|e| error::from_transport("download", e))?;
    if !resp.status().is_success() {
        return Err(error::from_status("download", resp.status(), resp.headers()));
    }
    let len = span.end - span.start;
    let state = Decrypt {
        ctr: crypto::ctr_at(&key, &nonce, aligned),
        skip: (span.start - aligned) as usize,
        mac: full.then(|| MacState::new(&key, &nonce)),
        expected_mac: meta_mac,
    };
    let body = resp.bytes_stream();
    let stream = futures::stream::unfold((body.boxed(), Some(state)), |(mut body, state)| async move {
        let mut st = state?;
        match body.next().await {
            Some(Ok(chunk)) => {
                let mut data = chunk.to_vec();
                st.ctr.apply_keystream(&mut data);
                let data = if st.skip > 0 {
                    let n = st.skip.min(data.len());
                    st.skip -= n;
                    data.split_off(n)
                } else {
                    data
                };
                if let Some(m) = st.mac.as_mut() {
                    m.update(&data);
                }
                Some((Ok(bytes::Bytes::from(data)), (body, Some(st))))
            }
            Some(Err(e)) => Some((Err(error::from_transport("download", e)), (body, None))),
            None => match st.mac.take().map(MacState::finish) {
                Some(got) if got != st.expected_mac => Some((
                    Err(StorageError::integrity("mega download: file MAC does not match (corrupt or tampered data)")),
                    (body, None),
                )),
                _ => None,
            },
        }
    });
    Ok(ByteStream::new(stream, Some(len)).expect_len(len))
}

struct Decrypt {
    ctr: ctr::Ctr128BE<aes::Aes128>,
    skip: usize,
    mac: Option<MacState>,
    expected_mac: [u8; 8],
}
