//! The spool directory: where a segment's bytes wait, fsynced, until enough
//! targets hold them.
//!
//! ```text
//! <dir>/spool.lock    held (flock) while a node uses the directory
//! <dir>/node-id       this node's id (a ULID made on first use)
//! <dir>/tmp/          uploads in progress (emptied at start)
//! <dir>/segments/<id> complete segments, named by segment id
//! ```
//!
//! The size cap counts complete segments plus the bytes uploads in progress
//! have reserved; a reservation that would pass the cap fails, so the
//! spool never takes more than it may, and nothing acknowledged is ever
//! dropped to make room.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use csal_core::{ErrorKind, Result, StorageError};

/// Where the spool lives and how big it may get.
///
/// `#[non_exhaustive]`: room for more spool settings (a free-space
/// reserve); build it with [`SpoolConfig::new`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SpoolConfig {
    /// The spool directory (created if missing; one node at a time).
    pub dir: PathBuf,
    /// Cap on spooled bytes (complete segments + uploads in progress).
    pub max_bytes: u64,
}

impl SpoolConfig {
    /// A spool in `dir` holding at most `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        SpoolConfig { dir: dir.into(), max_bytes }
    }
}

pub(crate) struct Spool {
    dir: PathBuf,
    node_id: String,
    max_bytes: u64,
    used: AtomicU64,
    segments: AtomicU64,
    /// The open `spool.lock`, holding the flock until [`Spool::release`].
    lock: std::sync::Mutex<Option<std::fs::File>>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("dir", &self.dir).field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> StorageError {
    move |e| StorageError::from(e).with_instance(what)
}

impl Spool {
    /// Open (creating) the spool directory, lock it for this process, read
    /// or make the node id, clear `tmp/` and count what `segments/` holds.
    pub(crate) fn open(config: &SpoolConfig) -> Result<Spool> {
        let dir = config.dir.clone();
        let ctx = |what: &str| format!("spool {}: {what}", dir.display());
        for sub in ["tmp", "segments"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(io_err(ctx("create")))?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("spool.lock"))
            .map_err(io_err(ctx("open spool.lock")))?;
        if !fs4::fs_std::FileExt::try_lock_exclusive(&lock).map_err(io_err(ctx("lock")))? {
            return Err(StorageError::new(
                ErrorKind::InvalidConfig,
                format!(
                    "spool {} is in use by another csal process; each node needs its own spool directory",
                    dir.display()
                ),
            ));
        }
        let node_file = dir.join("node-id");
        let node_id = match std::fs::read_to_string(&node_file) {
            Ok(id) if !id.trim().is_empty() => id.trim().to_owned(),
            Ok(_) | Err(_) => {
                let id = ulid::Ulid::new().to_string();
                write_durably(&node_file, id.as_bytes()).map_err(io_err(ctx("write node-id")))?;
                id
            }
        };
        let tmp = dir.join("tmp");
        for entry in std::fs::read_dir(&tmp).map_err(io_err(ctx("read tmp")))? {
            let path = entry.map_err(io_err(ctx("read tmp")))?.path();
            let _ = std::fs::remove_file(&path);
        }
        let spool = Spool {
            dir,
            node_id,
            max_bytes: config.max_bytes,
            used: AtomicU64::new(0),
            segments: AtomicU64::new(0),
            lock: std::sync::Mutex::new(Some(lock)),
        };
        for (_, size) in spool.files()? {
            spool.used.fetch_add(size, Ordering::SeqCst);
            spool.segments.fetch_add(1, Ordering::SeqCst);
        }
        Ok(spool)
    }

    /// Let another gateway use the directory (this one has stopped).
    pub(crate) fn release(&self) {
        self.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Whether this spool is still in use by its gateway.
    pub(crate) fn is_open(&self) -> bool {
        self.lock.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Complete segment files: (segment id, size).
    pub(crate) fn files(&self) -> Result<Vec<(String, u64)>> {
        let seg = self.dir.join("segments");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&seg).map_err(io_err(format!("spool {}", seg.display())))? {
            let entry = entry.map_err(io_err(format!("spool {}", seg.display())))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((name, size));
        }
        Ok(out)
    }

    pub(crate) fn segment_path(&self, segment_id: &str) -> PathBuf {
        self.dir.join("segments").join(segment_id)
    }

    pub(crate) fn tmp_path(&self) -> PathBuf {
        self.dir.join("tmp").join(ulid::Ulid::new().to_string())
    }

    /// Bytes spooled and reserved now.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Complete segments in the spool.
    pub(crate) fn segment_count(&self) -> u64 {
        self.segments.load(Ordering::SeqCst)
    }

    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// A complete segment left the spool.
    pub(crate) fn forget(&self, size: u64) {
        let _ = self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| Some(u.saturating_sub(size)));
        let _ = self.segments.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_sub(1)));
    }

    /// Remove a delivered segment's file (a missing file is fine).
    pub(crate) async fn remove(&self, segment_id: &str, size: u64) -> Result<()> {
        match tokio::fs::remove_file(self.segment_path(segment_id)).await {
            Ok(()) => {
                self.forget(size);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::from(e).with_instance(format!("spool {}", self.dir.display()))),
        }
    }
}

/// Space held for one upload in progress; given back on drop unless the
/// upload became a segment ([`Reservation::commit`]).
pub(crate) struct Reservation {
    spool: Arc<Spool>,
    bytes: u64,
}

impl Reservation {
    pub(crate) fn new(spool: Arc<Spool>) -> Self {
        Reservation { spool, bytes: 0 }
    }

    /// Hold `n` more bytes, or fail with `QuotaExceeded` if the spool would
    /// pass its cap.
    pub(crate) fn grow(&mut self, n: u64) -> Result<()> {
        let max = self.spool.max_bytes;
        let grown = self
            .spool
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| used.checked_add(n).filter(|total| *total <= max));
        match grown {
            Ok(_) => {
                self.bytes += n;
                Ok(())
            }
            Err(used) => Err(StorageError::new(
                ErrorKind::QuotaExceeded,
                format!("the spool is full ({used} of {max} bytes in use); retry when deliveries have caught up"),
            )),
        }
    }

    /// The upload is now a complete segment file of `size` bytes.
    pub(crate) fn commit(mut self, size: u64) {
        let held = std::mem::take(&mut self.bytes);
        let _ = self
            .spool
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| Some(u.saturating_sub(held).saturating_add(size)));
        self.spool.segments.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            let bytes = self.bytes;
            let _ = self.spool.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| Some(u.saturating_sub(bytes)));
        }
    }
}

/// Write a small file and fsync it and its folder.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// fsync a directory, so a rename or create in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
