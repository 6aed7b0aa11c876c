//! The body of a GET that may have asked for a range, from a server that
//! may ignore `Range`: whatever the server did, the caller gets exactly the
//! bytes asked for, or an error.

use bytes::Bytes;
use csal_core::{ByteRange, ByteStream, Result, StorageError};
use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use reqwest::header::CONTENT_RANGE;

use crate::error::{ErrorAnswer, transport_error};

/// `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// First byte of the part.
    pub start: u64,
    /// Inclusive.
    pub end: u64,
    /// Size of the whole object; `None` for `*` (unknown).
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parse a `Content-Range` value; `None` when malformed or not in bytes.
    pub fn parse(text: &str) -> Option<ContentRange> {
        let rest = text.trim().strip_prefix("bytes")?.trim_start();
        let (span, total) = rest.split_once('/')?;
        let (start, end) = span.split_once('-')?;
        let (start, end) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
        let total = match total.trim() {
            "*" => None,
            t => Some(t.parse().ok()?),
        };
        (start <= end && total.is_none_or(|t| end < t)).then_some(ContentRange { start, end, total })
    }

    fn len(&self) -> u64 {
        self.end - self.start + 1
    }
}

/// A download answered with a redirect to a pre-authorised URL (Box,
/// OneDrive): that URL, fetched with the same `Range` and nothing else (the
/// bearer token must not go to the storage host). Any other answer is
/// returned as it is.
pub async fn follow_download(
    http: &reqwest::Client,
    first: reqwest::Response,
    range: Option<ByteRange>,
    what: &str,
) -> Result<std::result::Result<reqwest::Response, ErrorAnswer>> {
    if !first.status().is_redirection() {
        return Ok(Ok(first));
    }
    let location = first
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| StorageError::transient(format!("{what}: a redirect without a Location")))?
        .to_owned();
    let mut request = http.get(&location);
    if let Some(r) = range {
        request = request.header(reqwest::header::RANGE, r.to_http_header());
    }
    let response = request.send().await.map_err(|e| transport_error(e, what))?;
    Ok(ErrorAnswer::check(response).await)
}

/// The bytes a GET asked for (`range`, or the whole object), from its
/// success answer. See [`ranged_stream`]; `object_size` is the size known
/// from metadata, if any.
pub fn ranged_body(
    response: reqwest::Response,
    range: Option<ByteRange>,
    object_size: Option<u64>,
    what: &str,
) -> Result<ByteStream> {
    let status = response.status();
    let content_range = response.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_length = response.content_length();
    let what_body = what.to_owned();
    let stream = response.bytes_stream().map(move |r| r.map_err(|e| transport_error(e, &what_body)));
    ranged_stream(stream, status, content_range.as_deref(), content_length, range, object_size, what)
}

/// The bytes asked for, whatever the server did with `Range`:
///
/// - 206: `Content-Range` must be there and start where the range starts
///   (and end where it ends, when the total is known); the body is checked
///   against that length. Any other span is an `Integrity` error, never the
///   wrong bytes.
/// - 200 to a ranged request (`Range` ignored): the range is cut out of the
///   whole body here, its size from `object_size` or `Content-Length`.
/// - 200 to an unranged request: the body, checked against its length.
pub fn ranged_stream<S>(
    stream: S,
    status: StatusCode,
    content_range: Option<&str>,
    content_length: Option<u64>,
    range: Option<ByteRange>,
    object_size: Option<u64>,
    what: &str,
) -> Result<ByteStream>
where
    S: Stream<Item = Result<Bytes>> + Send + 'static,
{
    if status == StatusCode::PARTIAL_CONTENT {
        let span = content_range.and_then(ContentRange::parse).ok_or_else(|| {
            StorageError::integrity(format!("{what}: a partial answer without a valid Content-Range"))
        })?;
        let (want_start, want_end) = match (range, span.total.or(object_size)) {
            (Some(r), Some(total)) => {
                let want = r.resolve(total)?;
                (Some(want.start), Some(want.end - 1))
            }
            (Some(ByteRange::Inclusive { start, .. } | ByteRange::From { start }), None) => (Some(start), None),
            (Some(ByteRange::Suffix { .. }), None) => (None, None),
            (None, total) => (Some(0), total.map(|t| t.saturating_sub(1))),
        };
        let wrong = want_start.is_some_and(|s| s != span.start)
            || want_end.is_some_and(|e| e != span.end)
            || matches!(range, Some(ByteRange::Inclusive { end, .. }) if span.end > end);
        if wrong {
            let asked = range.map(|r| r.to_string()).unwrap_or_else(|| "the whole object".to_owned());
            return Err(StorageError::integrity(format!(
                "{what}: asked for {asked}, the server sent bytes {}-{}",
                span.start, span.end
            )));
        }
        return Ok(ByteStream::new(stream, Some(span.len())).expect_len(span.len()));
    }
    if !status.is_success() {
        return Err(StorageError::permanent(format!("{what}: unexpected HTTP {} for a download", status.as_u16())));
    }
    match range {
        Some(r) => {
            let size = object_size.or(content_length).ok_or_else(|| {
                StorageError::transient(format!("{what}: the server ignored the range and sent no length"))
            })?;
            let span = r.resolve(size)?;
            Ok(ByteStream::new(stream, Some(size)).expect_len(size).window(span.start, span.end - span.start))
        }
        None => {
            let len = content_length.or(object_size);
            let body = ByteStream::new(stream, len);
            Ok(match len {
                Some(len) => body.expect_len(len),
                None => body,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csal_core::ErrorKind;

    fn body(data: &'static [u8]) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
        futures::stream::iter(data.chunks(3).map(|c| Ok(Bytes::from_static(c))).collect::<Vec<_>>())
    }

    async fn collect(s: ByteStream) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    const DATA: &[u8] = b"0123456789";

    #[tokio::test]
    async fn a_server_ignoring_range_gets_its_body_cut() {
        let r = Some(ByteRange::inclusive(2, 4));
        let s = ranged_stream(body(DATA), StatusCode::OK, None, Some(10), r, None, "GET x").unwrap();
        assert_eq!(collect(s).await.unwrap(), b"234");
        let r = Some(ByteRange::suffix(3));
        let s = ranged_stream(body(DATA), StatusCode::OK, None, None, r, Some(10), "GET x").unwrap();
        assert_eq!(collect(s).await.unwrap(), b"789");
    }

    #[tokio::test]
    async fn a_partial_answer_must_start_where_the_range_starts() {
        let r = Some(ByteRange::inclusive(2, 4));
        let ok =
            ranged_stream(body(&DATA[2..5]), StatusCode::PARTIAL_CONTENT, Some("bytes 2-4/10"), None, r, None, "x");
        assert_eq!(collect(ok.unwrap()).await.unwrap(), b"234");
        for wrong in ["bytes 0-2/10", "bytes 2-6/10", "bytes 3-5/*", "bytes 2-4/3"] {
            let e = ranged_stream(body(DATA), StatusCode::PARTIAL_CONTENT, Some(wrong), None, r, None, "x");
            assert_eq!(e.err().map(|e| e.kind()), Some(ErrorKind::Integrity), "{wrong}");
        }
        let e = ranged_stream(body(DATA), StatusCode::PARTIAL_CONTENT, None, None, r, None, "x");
        assert_eq!(e.err().map(|e| e.kind()), Some(ErrorKind::Integrity));
        // Unknown total: the start is still checked.
        let from = Some(ByteRange::from(7));
        let ok =
            ranged_stream(body(&DATA[7..]), StatusCode::PARTIAL_CONTENT, Some("bytes 7-9/*"), None, from, None, "x");
        assert_eq!(collect(ok.unwrap()).await.unwrap(), b"789");
    }

    #[tokio::test]
    async fn a_short_body_is_an_integrity_error() {
        let s = ranged_stream(body(&DATA[..4]), StatusCode::OK, None, Some(10), None, None, "x").unwrap();
        assert_eq!(collect(s).await.unwrap_err().kind(), ErrorKind::Integrity);
        let r = Some(ByteRange::inclusive(2, 4));
        let s = ranged_stream(body(&DATA[2..4]), StatusCode::PARTIAL_CONTENT, Some("bytes 2-4/10"), None, r, None, "x");
        assert_eq!(collect(s.unwrap()).await.unwrap_err().kind(), ErrorKind::Integrity);
    }

    #[test]
    fn content_range_parses_and_refuses_nonsense() {
        assert_eq!(ContentRange::parse("bytes 0-9/10"), Some(ContentRange { start: 0, end: 9, total: Some(10) }));
        assert_eq!(ContentRange::parse("bytes 5-9/*").map(|c| c.total), Some(None));
        for bad in ["", "bytes */10", "bytes 9-5/10", "bytes 0-10/10", "items 0-1/2"] {
            assert_eq!(ContentRange::parse(bad), None, "{bad}");
        }
    }
}
