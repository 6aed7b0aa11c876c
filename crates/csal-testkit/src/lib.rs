//! # csal-testkit
//!
//! Test support shared by CSAL's HTTP providers.
//!
//! [`FaultProxy`] is an HTTP/1.1 proxy on 127.0.0.1 that sits between a
//! provider and a real (emulated) server and breaks some requests on
//! purpose, chosen by a seeded schedule so a failing run can be repeated:
//!
//! - [`Fault::Reset`]: the connection is dropped without an answer;
//! - [`Fault::SlowDown`]: `503 SlowDown` with `Retry-After`;
//! - [`Fault::InternalError`]: `500 InternalError`;
//! - [`Fault::Stall`]: the answer is held back (longer than a client timeout);
//! - [`Fault::Truncate`]: the upstream answer is forwarded with its full
//!   `Content-Length` but only half of its body, then the connection drops;
//! - [`Fault::DropAnswer`]: the request reaches the server, which acts on
//!   it, but its answer is lost (the connection drops).
//!
//! Requests and answers are streamed, never buffered, and headers pass
//! unchanged (so SigV4 signatures over `Host` still verify upstream).
//! Every request is logged with the fault it got ([`FaultProxy::log`]).
//!
//! ```no_run
//! # async fn demo() {
//! use csal_testkit::{FaultPlan, FaultProxy};
//! let proxy = FaultProxy::start("http://127.0.0.1:5000", FaultPlan::seeded(7).resets(0.1).slow_downs(0.1, 1))
//!     .await
//!     .unwrap();
//! let endpoint = proxy.url(); // give this to the provider instead of the server
//! # }
//! ```
#![warn(missing_docs)]

pub mod credentials;
pub mod file_protocols;
mod http_faults;
pub mod memory;
pub mod scenarios;
pub mod tcp;
pub mod tls;

/// A folder name no other run uses (`base/<ulid>`), so tests sharing one
/// server never see each other's objects.
pub fn unique_folder(base: &str) -> String {
    format!("{base}/{}", ulid::Ulid::new().to_string().to_lowercase())
}

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = BoxBody<Bytes, BoxError>;

/// What the proxy does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward untouched.
    None,
    /// Close the connection without answering.
    Reset,
    /// `503` with S3's `SlowDown` error and `Retry-After: secs`.
    SlowDown {
        /// Seconds the `Retry-After` header asks for.
        retry_after_secs: u32,
    },
    /// `500` with S3's `InternalError`.
    InternalError,
    /// Wait this long, then forward.
    Stall(Duration),
    /// Forward, but cut the answer's body in half and drop the connection.
    Truncate,
    /// Forward (the server acts on the request), then drop the connection
    /// instead of passing the answer on. Only by [`FaultProxy::push_faults`].
    DropAnswer,
}

/// The seeded schedule: each request independently gets a fault with the
/// given probabilities (checked in the order below), decided by the seed
/// and the request's sequence number. Faults queued with
/// [`FaultProxy::push_faults`] come first.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Seed of the schedule: the same seed gives the same faults.
    pub seed: u64,
    /// Chance of a connection reset before answering.
    pub reset: f64,
    /// Chance of a 503 `SlowDown` with `Retry-After`.
    pub slow_down: f64,
    /// The `Retry-After` seconds of those answers.
    pub retry_after_secs: u32,
    /// Chance of a 500.
    pub internal_error: f64,
    /// Chance of a stall before the answer.
    pub stall: f64,
    /// How long a stall lasts.
    pub stall_for: Duration,
    /// Chance of a body cut short.
    pub truncate: f64,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> Self {
        FaultPlan {
            seed: 0,
            reset: 0.0,
            slow_down: 0.0,
            retry_after_secs: 1,
            internal_error: 0.0,
            stall: 0.0,
            stall_for: Duration::from_secs(30),
            truncate: 0.0,
        }
    }
    /// No faults yet, with this seed; add them with the methods below.
    pub fn seeded(seed: u64) -> Self {
        FaultPlan { seed, ..FaultPlan::none() }
    }
    /// Reset connections with probability `p`.
    pub fn resets(mut self, p: f64) -> Self {
        self.reset = p;
        self
    }
    /// Answer 503 `SlowDown` with `Retry-After: retry_after_secs` with probability `p`.
    pub fn slow_downs(mut self, p: f64, retry_after_secs: u32) -> Self {
        self.slow_down = p;
        self.retry_after_secs = retry_after_secs;
        self
    }
    /// Answer 500 with probability `p`.
    pub fn internal_errors(mut self, p: f64) -> Self {
        self.internal_error = p;
        self
    }
    /// Stall for `stall_for` before answering, with probability `p`.
    pub fn stalls(mut self, p: f64, stall_for: Duration) -> Self {
        self.stall = p;
        self.stall_for = stall_for;
        self
    }
    /// Cut the body short with probability `p`.
    pub fn truncations(mut self, p: f64) -> Self {
        self.truncate = p;
        self
    }

    /// The fault of request number `n` (deterministic for a seed).
    pub fn fault_for(&self, n: u64) -> Fault {
        let mut rng = fastrand::Rng::with_seed(self.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut roll = rng.f64();
        for (p, fault) in [
            (self.reset, Fault::Reset),
            (self.slow_down, Fault::SlowDown { retry_after_secs: self.retry_after_secs }),
            (self.internal_error, Fault::InternalError),
            (self.stall, Fault::Stall(self.stall_for)),
            (self.truncate, Fault::Truncate),
        ] {
            if roll < p {
                return fault;
            }
            roll -= p;
        }
        Fault::None
    }
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// Sequence number (0 for the first request).
    pub seq: u64,
    /// When it arrived.
    pub at: Instant,
    /// HTTP method.
    pub method: String,
    /// Path and query as sent.
    pub path_and_query: String,
    /// What the proxy did to it.
    pub fault: Fault,
}

struct State {
    plan: FaultPlan,
    queued: VecDeque<Fault>,
    seq: u64,
    log: Vec<LoggedRequest>,
}

struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
}

impl Shared {
    fn next_fault(&self, method: &str, path: &str) -> Fault {
        let mut s = self.state.lock().expect("proxy state");
        let seq = s.seq;
        s.seq += 1;
        let fault = match s.queued.pop_front() {
            Some(f) => f,
            None => s.plan.fault_for(seq),
        };
        s.log.push(LoggedRequest {
            seq,
            at: Instant::now(),
            method: method.to_owned(),
            path_and_query: path.to_owned(),
            fault,
        });
        fault
    }
}

/// A running fault proxy; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on 127.0.0.1 (a free port) in front of `upstream`
    /// (`http://127.0.0.1:PORT`; only loopback upstreams are accepted).
    pub async fn start(upstream: &str, plan: FaultPlan) -> std::io::Result<FaultProxy> {
        let upstream = parse_upstream(upstream)?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State { plan, queued: VecDeque::new(), seq: 0, log: Vec::new() }),
        });
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    // Errors here are the faults we inject (or clients going away).
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(FaultProxy { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where the proxy listens (point the instance's endpoint here).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replace the schedule (e.g. `FaultPlan::none()` to verify results).
    pub fn set_plan(&self, plan: FaultPlan) {
        self.shared.state.lock().expect("proxy state").plan = plan;
    }

    /// Give the next requests these faults, in order, before the schedule.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.state.lock().expect("proxy state").queued.extend(faults);
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.shared.state.lock().expect("proxy state").log.clone()
    }

    /// How many requests got a fault other than `None`.
    pub fn faults_injected(&self) -> usize {
        self.log().iter().filter(|r| r.fault != Fault::None).count()
    }

    /// Forget the requests logged so far.
    pub fn clear_log(&self) {
        self.shared.state.lock().expect("proxy state").log.clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn parse_upstream(upstream: &str) -> std::io::Result<SocketAddr> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidInput, "upstream must be http://127.0.0.1:PORT");
    let rest = upstream.strip_prefix("http://").ok_or_else(bad)?.trim_end_matches('/');
    let rest = rest.replace("localhost", "127.0.0.1");
    let addr: SocketAddr = rest.parse().map_err(|_| bad())?;
    if !addr.ip().is_loopback() {
        return Err(bad());
    }
    Ok(addr)
}

fn s3_error(status: StatusCode, code: &str, message: &str, retry_after: Option<u32>) -> Response<ProxyBody> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>csal-testkit</RequestId></Error>"
    );
    let mut resp = Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("content-length", body.len().to_string())
        .header("connection", "close");
    if let Some(secs) = retry_after {
        resp = resp.header("retry-after", secs.to_string());
    }
    resp.body(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed()).expect("valid response")
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<ProxyBody>, BoxError> {
    let path = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let fault = shared.next_fault(req.method().as_str(), &path);
    match fault {
        Fault::Reset => return Err("csal-testkit: injected connection reset".into()),
        Fault::SlowDown { retry_after_secs } => {
            drain(req.into_body()).await;
            return Ok(s3_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Please reduce your request rate.",
                Some(retry_after_secs),
            ));
        }
        Fault::InternalError => {
            drain(req.into_body()).await;
            return Ok(s3_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "We encountered an internal error. Please try again.",
                None,
            ));
        }
        Fault::Stall(d) => tokio::time::sleep(d).await,
        Fault::None | Fault::Truncate | Fault::DropAnswer => {}
    }
    let resp = forward(shared.upstream, req).await?;
    if fault == Fault::DropAnswer {
        // Read the whole answer first, so the server has finished with the request.
        let _ = resp.into_body().collect().await;
        return Err("csal-testkit: injected lost answer".into());
    }
    if fault == Fault::Truncate {
        let len = resp.headers().get("content-length").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let Some(len) = len.filter(|&l| l >= 2) {
            let (parts, body) = resp.into_parts();
            return Ok(Response::from_parts(parts, Truncated { inner: body, left: len / 2, len }.boxed()));
        }
    }
    Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed()))
}

/// Read and drop a request's body before answering it with an error, as a
/// server that reads the whole request does: answering with the body
/// unread and closing (`connection: close`) resets the connection while
/// the client may still be sending, and the client then sees a lost answer
/// instead of the 503 or 500 the test meant (CI did).
async fn drain(mut body: Incoming) {
    while let Some(Ok(_)) = body.frame().await {}
}

async fn forward(upstream: SocketAddr, req: Request<Incoming>) -> Result<Response<Incoming>, BoxError> {
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender.send_request(req).await?)
}

/// A body that passes `left` bytes, then fails (hyper then drops the
/// connection, so the client sees fewer bytes than `Content-Length`).
struct Truncated {
    inner: Incoming,
    left: u64,
    len: u64,
}

impl Body for Truncated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.left == 0 {
            return Poll::Ready(Some(Err("csal-testkit: injected truncated body".into())));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(Some(Err("csal-testkit: injected truncated body".into()))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    if data.len() as u64 > self.left {
                        data.truncate(self.left as usize);
                    }
                    self.left -= data.len() as u64;
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_deterministic_and_roughly_proportional() {
        let plan = FaultPlan::seeded(42).resets(0.1).slow_downs(0.1, 2).truncations(0.1);
        let a: Vec<Fault> = (0..1000).map(|n| plan.fault_for(n)).collect();
        let b: Vec<Fault> = (0..1000).map(|n| plan.fault_for(n)).collect();
        assert_eq!(a, b);
        let resets = a.iter().filter(|f| **f == Fault::Reset).count();
        assert!((50..150).contains(&resets), "{resets}");
        let none = a.iter().filter(|f| **f == Fault::None).count();
        assert!((600..800).contains(&none), "{none}");
        assert!(a.contains(&Fault::SlowDown { retry_after_secs: 2 }));
    }

    #[test]
    fn only_loopback_upstreams() {
        assert!(parse_upstream("http://127.0.0.1:5000").is_ok());
        assert!(parse_upstream("http://localhost:5000/").is_ok());
        assert!(parse_upstream("http://10.0.0.1:5000").is_err());
        assert!(parse_upstream("https://127.0.0.1:5000").is_err());
    }
}
