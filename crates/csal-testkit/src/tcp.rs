//! [`CutProxy`]: a TCP proxy on 127.0.0.1 that can cut every open connection once a given
//! number of bytes went from the client to the server (fault tests).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy that cuts connections mid-transfer; see the module docs.
pub struct CutProxy {
    /// Where it listens on 127.0.0.1.
    pub port: u16,
    upstream_bytes: Arc<AtomicU64>,
    cut_at: Arc<AtomicU64>,
    epoch: Arc<watch::Sender<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    /// Start forwarding to `target`, cutting nothing until asked.
    pub async fn start(target: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let upstream_bytes = Arc::new(AtomicU64::new(0));
        let cut_at = Arc::new(AtomicU64::new(u64::MAX));
        let epoch = Arc::new(watch::channel(0u64).0);
        let (b, c, e) = (upstream_bytes.clone(), cut_at.clone(), epoch.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else { continue };
                tokio::spawn(relay(client, server, b.clone(), c.clone(), e.clone()));
            }
        });
        CutProxy { port, upstream_bytes, cut_at, epoch, task }
    }

    /// Cut all connections open at that moment once `more` further bytes went upstream.
    pub fn cut_after(&self, more: u64) {
        self.cut_at.store(self.upstream_bytes.load(Ordering::SeqCst) + more, Ordering::SeqCst);
    }

    /// A handle that cuts every open connection when called (e.g. from a body stream).
    pub fn cutter(&self) -> impl Fn() + Send + Sync + 'static {
        let epoch = self.epoch.clone();
        move || epoch.send_modify(|e| *e += 1)
    }

    /// How many cuts happened.
    pub fn cuts(&self) -> u64 {
        *self.epoch.borrow()
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    up: Arc<AtomicU64>,
    cut_at: Arc<AtomicU64>,
    epoch: Arc<watch::Sender<u64>>,
) {
    let mut cut = epoch.subscribe();
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut a = vec![0u8; 64 * 1024];
    let mut b = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            _ = cut.changed() => return,
            n = cr.read(&mut a) => {
                let Ok(n) = n else { return };
                if n == 0 { let _ = sw.shutdown().await; return; }
                if sw.write_all(&a[..n]).await.is_err() { return; }
                let total = up.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                if total >= cut_at.load(Ordering::SeqCst) {
                    cut_at.store(u64::MAX, Ordering::SeqCst);
                    epoch.send_modify(|e| *e += 1);
                    return;
                }
            }
            n = sr.read(&mut b) => {
                let Ok(n) = n else { return };
                if n == 0 { let _ = cw.shutdown().await; return; }
                if cw.write_all(&b[..n]).await.is_err() { return; }
            }
        }
    }
}
