//! Reading a whole answer body, with a cap so that a broken or hostile
//! server cannot make us hold more than we expect.

use bytes::BytesMut;
use csal_core::{Result, StorageError};
use futures::StreamExt;

use crate::error::transport_error;

/// The largest answer [`read_json`] and [`read_answer`] read (a 1,000-item
/// listing is well under 1 MiB).
pub const ANSWER_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Read at most `limit` bytes of `response`; `Ok(None)` when it is longer.
pub(crate) async fn read_capped(response: reqwest::Response, limit: usize, what: &str) -> Result<Option<BytesMut>> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut out = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport_error(e, what))?;
        if out.len() + chunk.len() > limit {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// A whole (non-object) answer such as a listing, at most
/// [`ANSWER_BODY_LIMIT`] bytes; a longer one is a `Transient` error.
pub async fn read_answer(response: reqwest::Response, what: &str) -> Result<bytes::Bytes> {
    let body = read_capped(response, ANSWER_BODY_LIMIT, what).await?.ok_or_else(|| {
        StorageError::transient(format!("{what}: the answer is larger than {ANSWER_BODY_LIMIT} bytes"))
    })?;
    Ok(body.freeze())
}

/// Parse a JSON answer (at most [`ANSWER_BODY_LIMIT`] bytes); an empty body
/// is `null`. An unreadable answer is `Transient` (a proxy's error page, a
/// body cut short).
pub async fn read_json<T: serde::de::DeserializeOwned>(response: reqwest::Response, what: &str) -> Result<T> {
    let body = read_answer(response, what).await?;
    let body: &[u8] = if body.is_empty() { b"null" } else { &body };
    serde_json::from_slice(body)
        .map_err(|e| StorageError::transient(format!("{what}: the server answered with malformed JSON")).with_source(e))
}

/// A request body of a part's chunks as they are (no copy into one buffer).
/// Set `Content-Length` to `part.len()` beside it so it is not sent chunked.
/// Cheap to make again for a resend (the chunks are reference counted).
pub fn part_body(part: &csal_core::BodyPart) -> reqwest::Body {
    let chunks = part.chunks().to_vec().into_iter().map(Ok::<_, std::convert::Infallible>);
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}
