//! csal-http against a real socket: a loopback server that answers with a
//! huge error body or a partial answer for the wrong bytes (issue 15
//! item 7: error bodies are capped, a 206's `Content-Range` is checked).

use std::time::{Duration, Instant};

use csal_core::{ByteRange, ErrorKind, Timeouts};
use csal_http::{ERROR_BODY_LIMIT, ErrorAnswer, HttpOptions};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serve one connection: read the request head, write `head`, then
/// `body_len` bytes of `b'x'` in 64 KiB pieces (or until the client leaves).
async fn serve_once(head: String, body_len: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await;
        if socket.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let piece = vec![b'x'; 64 * 1024];
        let mut left = body_len;
        while left > 0 {
            let n = left.min(piece.len());
            if socket.write_all(&piece[..n]).await.is_err() {
                return;
            }
            left -= n;
        }
    });
    format!("http://{addr}/object")
}

fn client() -> reqwest::Client {
    let timeouts = Timeouts::from_secs(5, 5, None).unwrap();
    HttpOptions::new("csal-http-test", timeouts).build().unwrap()
}

#[tokio::test]
async fn an_error_answer_reads_at_most_its_cap_of_a_huge_body() {
    let body_len = 64 * 1024 * 1024;
    let head = format!("HTTP/1.1 500 Internal Server Error\r\ncontent-length: {body_len}\r\nretry-after: 2\r\n\r\n");
    let url = serve_once(head, body_len).await;
    let started = Instant::now();
    let response = client().get(url).send().await.unwrap();
    let answer = ErrorAnswer::read(response).await;
    assert_eq!(answer.status.as_u16(), 500);
    assert!(answer.body.len() <= ERROR_BODY_LIMIT, "read {} bytes of an error body", answer.body.len());
    assert_eq!(answer.retry_after(), Some(Duration::from_secs(2)));
    assert!(started.elapsed() < Duration::from_secs(5), "the rest of the body was not waited for");
}

#[tokio::test]
async fn a_partial_answer_for_other_bytes_is_refused() {
    // Asked for bytes 100-199, the server says (and sends) 0-99.
    let head = "HTTP/1.1 206 Partial Content\r\ncontent-length: 100\r\ncontent-range: bytes 0-99/1000\r\n\r\n";
    let url = serve_once(head.to_owned(), 100).await;
    let range = Some(ByteRange::inclusive(100, 199));
    let response = client().get(url).header("range", "bytes=100-199").send().await.unwrap();
    let Err(e) = csal_http::ranged_body(response, range, None, "GET object") else {
        panic!("a 206 for other bytes was accepted")
    };
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
}

#[tokio::test]
async fn a_server_ignoring_range_gives_the_asked_bytes() {
    let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n";
    let url = serve_once(head.to_owned(), 1000).await;
    let range = Some(ByteRange::inclusive(100, 199));
    let response = client().get(url).header("range", "bytes=100-199").send().await.unwrap();
    let mut body = csal_http::ranged_body(response, range, None, "GET object").unwrap();
    let mut got = 0;
    while let Some(chunk) = body.next().await {
        got += chunk.unwrap().len();
    }
    assert_eq!(got, 100);
}
