//! The TLS stream under suppaftp: tokio-rustls, flushed after every write.
//!
//! suppaftp writes each command with `write_all` and no `flush`. tokio-rustls
//! accepts the bytes into its session and, when the socket is not writable
//! at that instant, keeps the encrypted record buffered until the next write
//! or flush: the command never leaves, and the client waits for a reply the
//! server never got (observed against vsftpd as 60 s stalls after some
//! commands). This wrapper drives the flush inside `poll_write`, reporting
//! the bytes as written only once they reached the socket.

use std::pin::Pin;
use std::task::{Context, Poll};

use suppaftp::FtpError;
use suppaftp::tokio::{AsyncTlsConnector, TokioTlsStream};
use suppaftp::tokio_rustls::TlsConnector;
use suppaftp::tokio_rustls::client::TlsStream;
use suppaftp::tokio_rustls::rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct FlushingTls {
    stream: TlsStream<TcpStream>,
    /// Bytes already handed to rustls whose flush is still pending.
    unflushed: Option<usize>,
}

impl AsyncRead for FlushingTls {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FlushingTls {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let n = match self.unflushed {
            Some(n) => n,
            None => match Pin::new(&mut self.stream).poll_write(cx, buf) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            },
        };
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.unflushed = None;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => {
                self.unflushed = None;
                Poll::Ready(Err(e))
            }
            Poll::Pending => {
                // The caller polls again with the same buffer; report `n` then.
                self.unflushed = Some(n);
                Poll::Pending
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl TokioTlsStream for FlushingTls {
    type InnerStream = TlsStream<TcpStream>;

    fn tcp_stream(self) -> suppaftp::FtpResult<TcpStream> {
        Ok(self.stream.into_inner().0)
    }

    fn get_ref(&self) -> &TcpStream {
        self.stream.get_ref().0
    }

    fn mut_ref(&mut self) -> &mut Self::InnerStream {
        &mut self.stream
    }
}

#[derive(Clone)]
pub struct FlushingTlsConnector(pub TlsConnector);

impl std::fmt::Debug for FlushingTlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlushingTlsConnector")
    }
}

#[async_trait::async_trait]
impl AsyncTlsConnector for FlushingTlsConnector {
    type Stream = FlushingTls;

    async fn connect(&self, domain: &str, stream: TcpStream) -> suppaftp::FtpResult<FlushingTls> {
        let name = ServerName::try_from(domain.to_owned()).map_err(|e| FtpError::SecureError(e.to_string()))?;
        let stream = self.0.connect(name, stream).await.map_err(|e| FtpError::SecureError(e.to_string()))?;
        Ok(FlushingTls { stream, unflushed: None })
    }
}
