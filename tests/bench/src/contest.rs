//! Transfer contests: CSAL through the router against its peers on one
//! backend, in one run. Every upload and every download runs in a child
//! process of its own (this binary re-executed with the hidden `transfer`
//! command), so each peak RSS (VmHWM) belongs to one client doing one
//! transfer, and one client's allocations cannot help or hurt another.
//!
//! The body is generated chunk by chunk (`source`), never held whole;
//! downloads are streamed and discarded, their byte count and CRC32C
//! checked against the source, so a short or corrupt transfer fails the
//! benchmark instead of looking fast.

use std::time::Instant;

use anyhow::{Context, Result};

use crate::Figure;
use crate::child::run_child;
use crate::peers::AnyPeer;
use crate::rss::peak_rss_kib;
use crate::source::{self, Digest};

/// Part size and parts in flight, the same for every client that has the knobs.
pub const PART_SIZE: usize = 8 << 20;
pub const CONCURRENCY: usize = 4;
/// Bytes per ranged GET of a download in ranges: csal-s3's fixed range, so
/// OpenDAL's reader runs on the same knob.
pub const READ_RANGE: usize = csal_s3::READ_RANGE as usize;
/// Peak RSS target of one CSAL transfer.
pub const RSS_TARGET_MIB: f64 = 64.0;
/// Every object of the contests lives under this prefix.
const PREFIX: &str = "bench/";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    S3,
    LocalFs,
    Gcs,
    Azure,
}

impl Backend {
    /// Every backend, in the order a full run takes them (see `run_all`).
    pub const IN_RUN_ORDER: [Backend; 4] = [Backend::S3, Backend::LocalFs, Backend::Azure, Backend::Gcs];

    /// CSAL first, then its peers.
    pub fn clients(self) -> &'static [Client] {
        match self {
            Backend::S3 => &[Client::Csal, Client::AwsSdkS3, Client::ObjectStore, Client::Opendal],
            Backend::LocalFs => &[Client::Csal, Client::TokioFs, Client::ObjectStore],
            // object_store's GCS store cannot upload to fake-gcs-server (see `upload_notes`).
            Backend::Gcs => &[Client::Csal, Client::Opendal],
            Backend::Azure => &[Client::Csal, Client::ObjectStore, Client::Opendal],
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Backend::S3 => "s3 on s3s-fs",
            Backend::LocalFs => "local_fs",
            Backend::Gcs => "gcs on fake-gcs-server",
            Backend::Azure => "azure_blob on Azurite",
        }
    }

    /// For file names and the `transfer` argument.
    pub fn slug(self) -> &'static str {
        match self {
            Backend::S3 => "s3",
            Backend::LocalFs => "local-fs",
            Backend::Gcs => "gcs",
            Backend::Azure => "azure",
        }
    }

    /// How each client downloads (for the notes under the table).
    fn download_note(self) -> String {
        let checked = "every byte counted and CRC32C-checked against the source";
        match self {
            Backend::S3 => format!(
                "download: CSAL and OpenDAL (its concurrent reader) as ranged GETs of {} MiB, {CONCURRENCY} in flight; aws-sdk-s3 and object_store one streaming GET (no such reader); {checked}",
                READ_RANGE >> 20
            ),
            _ => format!("download: one streaming GET per client; {checked}"),
        }
    }

    /// How each client uploads (for the notes under the table).
    fn upload_notes(self) -> Vec<String> {
        let parts = format!("{} MiB parts, {CONCURRENCY} in flight", PART_SIZE >> 20);
        match self {
            Backend::S3 => vec![
                format!("every client: multipart upload, {parts}"),
                "checksums sent: csal-s3 CRC32C per part (its default; the server verifies it); aws-sdk-s3 its default (CRC32 per part); object_store and OpenDAL none (their defaults)".into(),
            ],
            Backend::LocalFs => vec![
                "csal: local_fs (temp file, fsync, hard link to a fresh id, fsync of the directory)".into(),
                "tokio::fs: create, write, fsync of the file and the directory".into(),
                format!("object_store LocalFileSystem: WriteMultipart ({parts}), then fsync of the file and the directory, for the same durability (it does not fsync by itself)"),
            ],
            Backend::Gcs => {
                let chunk = csal_gcs::DEFAULT_CHUNK_SIZE >> 20;
                vec![
                    format!(
                        "csal: gcs resumable upload, {chunk} MiB chunks (its default; one in flight: GCS resumable uploads are sequential)"
                    ),
                    "OpenDAL: resumable upload (`if_not_exists`, as CSAL refuses to overwrite too), 8 MiB chunks (fixed in its conditional GCS writer: `chunk()` does not change them; without `if_not_exists` it uploads with the XML API, which fake-gcs-server refuses)".into(),
                    "fake-gcs-server hashes (MD5, CRC32C) everything received so far on every chunk, so its upload time grows with size squared over chunk size; larger chunks, not the client, set the pace".into(),
                    "object_store: not comparable here: its GCS store uploads with the XML API (`PUT /bucket/object`, XML multipart), which fake-gcs-server answers with 400".into(),
                ]
            }
            Backend::Azure => vec![
                format!("csal: azure_blob staged blocks ({parts}: its defaults), Put Block List"),
                format!("object_store: WriteMultipart, {parts} (Put Block, Put Block List)"),
                format!("OpenDAL: Writer, {parts} (Put Block, Put Block List)"),
            ],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    Csal,
    AwsSdkS3,
    ObjectStore,
    Opendal,
    TokioFs,
}

impl Client {
    pub fn label(self) -> &'static str {
        match self {
            Client::Csal => "CSAL (router)",
            Client::AwsSdkS3 => "aws-sdk-s3 (raw calls)",
            Client::ObjectStore => "object_store",
            Client::Opendal => "OpenDAL",
            Client::TokioFs => "tokio::fs",
        }
    }

    /// The clap (kebab-case) argument.
    pub fn arg(self) -> &'static str {
        match self {
            Client::Csal => "csal",
            Client::AwsSdkS3 => "aws-sdk-s3",
            Client::ObjectStore => "object-store",
            Client::Opendal => "opendal",
            Client::TokioFs => "tokio-fs",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    Upload,
    Download,
}

impl Op {
    pub fn arg(self) -> &'static str {
        match self {
            Op::Upload => "upload",
            Op::Download => "download",
        }
    }
}

/// What a `transfer` child prints, as its last line of stdout.
#[derive(serde::Serialize, serde::Deserialize)]
struct Outcome {
    seconds: f64,
    /// Key to read back (after an upload) or the one read.
    key: String,
    /// Of the downloaded body.
    digest: Option<Digest>,
    peak_rss_kib: u64,
}

// ---- child side ----

/// Child: one transfer by one client; prints an [`Outcome`]. A download
/// deletes its object afterwards (not timed).
pub async fn child(backend: Backend, client: Client, op: Op, size: u64, key: &str, keep: bool) -> Result<()> {
    let peer = AnyPeer::connect(backend, client)?;
    let started = Instant::now();
    let (key, digest) = match op {
        Op::Upload => (peer.upload(key, size).await?, None),
        Op::Download => (key.to_owned(), Some(peer.download(key).await?)),
    };
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_kib = peak_rss_kib()?;
    if op == Op::Download && !keep {
        peer.delete(&key).await?;
    }
    println!("{}", serde_json::to_string(&Outcome { seconds, key, digest, peak_rss_kib })?);
    Ok(())
}

// ---- parent side ----

/// Best time and worst peak RSS of one client for one operation.
#[derive(Clone, Copy)]
pub struct Measure {
    pub seconds: f64,
    pub peak_rss_kib: u64,
}

impl Measure {
    fn merge(self, other: Measure) -> Measure {
        Measure { seconds: self.seconds.min(other.seconds), peak_rss_kib: self.peak_rss_kib.max(other.peak_rss_kib) }
    }
}

/// The results of [`compare`], indexed like `backend.clients()`.
pub struct Comparison {
    pub backend: Backend,
    pub size: u64,
    rounds: u32,
    /// Rounds of the downloads (more than `rounds` when they were short).
    download_rounds: u32,
    pub upload: Vec<Measure>,
    pub download: Vec<Measure>,
}

/// One transfer in a child process; with `keep`, a download leaves the object for the next.
async fn transfer(
    backend: Backend,
    client: Client,
    op: Op,
    size: u64,
    key: &str,
    env: &[(String, String)],
    keep: bool,
) -> Result<Outcome> {
    let size = size.to_string();
    let mut args = vec!["--size", &size, "transfer", backend.slug(), client.arg(), op.arg(), "--key", key];
    if keep {
        args.push("--keep");
    }
    let line = run_child(&args, env).await?;
    serde_json::from_str(&line).with_context(|| format!("child output {line:?}"))
}

/// Bucket / container / directory in place before the children run.
async fn prepare(backend: Backend, local_root: &std::path::Path) -> Result<()> {
    match backend {
        Backend::S3 => {
            let sdk = crate::peers::aws_sdk::client(&crate::env::S3Server::from_env()?);
            // Already there (an earlier run) is fine; HEAD is the real check.
            let _ = sdk.create_bucket().bucket(crate::env::BUCKET).send().await;
            sdk.head_bucket().bucket(crate::env::BUCKET).send().await.context("S3 bucket")?;
        }
        Backend::Gcs => {
            let cfg = serde_json::json!({ "bucket": crate::env::BUCKET, "endpoint": crate::env::gcs_endpoint()? });
            csal_gcs::GcsModule::new(serde_json::from_value(cfg)?)?.create_bucket("csal-bench").await?;
        }
        Backend::Azure => {
            let (_, cfg) = crate::env::csal_instance(Backend::Azure)?;
            csal_azure_blob::AzureBlobModule::new(serde_json::from_value(cfg)?)?.create_container().await?;
        }
        Backend::LocalFs => std::fs::create_dir_all(local_root)?,
    }
    Ok(())
}

/// How many rounds a short transfer gets: enough for `secs` of measured
/// transfers per client (a transfer of a quarter second is moved by any
/// hiccup of a shared machine, or of an emulator), at most `max`.
struct RoundRule {
    secs: f64,
    max: u32,
}

impl RoundRule {
    /// Rounds an operation whose best time so far is `best` seconds needs.
    fn rounds(&self, best: f64, asked: u32) -> u32 {
        ((self.secs / best.max(1e-3)).ceil() as u32).clamp(asked, self.max.max(asked))
    }
}

/// Full rounds (upload, then download): each stores an object, and Azurite
/// holds deleted blobs in memory until its next clean-up.
const FULL_ROUNDS: RoundRule = RoundRule { secs: 2.0, max: 9 };
/// Download-only rounds read kept objects and store nothing, so short
/// downloads get more of them: Azurite's 256 MiB downloads took 0.25 to
/// 0.35 s for every client alike, and a best of 6 still differed by 17 %;
/// fake-gcs-server's 1 GiB downloads took 0.32 to 0.62 s for CSAL and
/// OpenDAL alike (same client CPU, 0.30-0.42 s), so 5 s (13 rounds) of
/// them still left the bests 13 % apart.
const DOWNLOAD_ROUNDS: RoundRule = RoundRule { secs: 10.0, max: 30 };

/// Every client of `backend`, `rounds` times (order rotated each round so
/// none always goes first), more for short transfers (see
/// [`RoundRule`]: extra full rounds while uploads are short, then
/// download-only rounds of kept objects); best time, worst peak RSS.
pub async fn compare(backend: Backend, size: u64, rounds: u32) -> Result<Comparison> {
    anyhow::ensure!(size > 0, "--size must be at least 1 byte");
    // local_fs stores under target/ (a real disk, not a tmpfs /tmp).
    let local = tempfile::tempdir_in(std::env::current_dir()?.join("target"))?;
    let env = vec![(crate::env::LOCAL_ROOT_VAR.to_owned(), local.path().display().to_string())];
    prepare(backend, local.path()).await?;
    let clients = backend.clients();
    let expected = Digest::of_source(size);
    let mut upload: Vec<Option<Measure>> = vec![None; clients.len()];
    let mut download = upload.clone();
    let measure = |o: &Outcome| Measure { seconds: o.seconds, peak_rss_kib: o.peak_rss_kib };
    let merge =
        |slot: &mut Option<Measure>, o: &Outcome| *slot = Some(slot.map_or(measure(o), |m| m.merge(measure(o))));
    let check = |client: Client, down: &Outcome| {
        anyhow::ensure!(
            down.digest == Some(expected),
            "{} on {}: downloaded {:?}, expected {expected:?}",
            client.label(),
            backend.title(),
            down.digest
        );
        Ok(())
    };
    let best = |v: &[Option<Measure>]| v.iter().flatten().map(|m| m.seconds).fold(f64::INFINITY, f64::min);
    let asked = rounds.max(1);
    let (mut full_rounds, mut round) = (asked, 0);
    // Objects left in place for download-only rounds, with their client's index:
    // the last full round keeps its objects when the downloads so far say more
    // rounds will follow (uploading others for them took a server that keeps
    // blobs in memory, Azurite, past its limit).
    let mut kept: Vec<(usize, String)> = Vec::new();
    while round < full_rounds {
        let keep =
            round > 0 && round + 1 == full_rounds && DOWNLOAD_ROUNDS.rounds(best(&download), full_rounds) > full_rounds;
        for i in rotated(clients.len(), round) {
            let client = clients[i];
            eprintln!(
                "csal-bench: {} {} MiB, round {}/{full_rounds}: {}",
                backend.title(),
                size >> 20,
                round + 1,
                client.label()
            );
            let key = format!("{PREFIX}{}-{round}.bin", client.arg());
            let up = transfer(backend, client, Op::Upload, size, &key, &env, false).await?;
            let down = transfer(backend, client, Op::Download, size, &up.key, &env, keep).await?;
            check(client, &down)?;
            if keep {
                kept.push((i, up.key.clone()));
            }
            merge(&mut upload[i], &up);
            merge(&mut download[i], &down);
        }
        round += 1;
        if round == asked {
            full_rounds = FULL_ROUNDS.rounds(best(&upload), asked);
        }
    }
    let total = DOWNLOAD_ROUNDS.rounds(best(&download), full_rounds);
    if total > full_rounds {
        // Download-only rounds; each client reads an object it wrote itself
        // (a local store's object id is not every client's file name).
        for (i, &client) in clients.iter().enumerate() {
            if !kept.iter().any(|(c, _)| *c == i) {
                let key = format!("{PREFIX}{}-kept.bin", client.arg());
                kept.push((i, transfer(backend, client, Op::Upload, size, &key, &env, false).await?.key));
            }
        }
        let newest = |i: usize| kept.iter().rev().find(|(c, _)| *c == i).map(|(_, key)| key.clone());
        for round in full_rounds..total {
            for i in rotated(clients.len(), round) {
                let client = clients[i];
                eprintln!(
                    "csal-bench: {} {} MiB, download round {}/{total}: {}",
                    backend.title(),
                    size >> 20,
                    round + 1,
                    client.label()
                );
                let key = newest(i).expect("every client has a kept object");
                let down = transfer(backend, client, Op::Download, size, &key, &env, true).await?;
                check(client, &down)?;
                merge(&mut download[i], &down);
            }
        }
    }
    // A last download without --keep removes each kept object.
    for (i, key) in &kept {
        transfer(backend, clients[*i], Op::Download, size, key, &env, false).await?;
    }
    let done = |v: Vec<Option<Measure>>| v.into_iter().map(|m| m.expect("every client ran")).collect();
    Ok(Comparison {
        backend,
        size,
        rounds: full_rounds,
        download_rounds: total,
        upload: done(upload),
        download: done(download),
    })
}

/// Client indices in round `round`'s order (rotated, so none always goes first).
fn rotated(clients: usize, round: u32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..clients).collect();
    order.rotate_left(round as usize % clients);
    order
}

// ---- report ----

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// One client's line of a comparison table.
pub struct Row {
    pub client: Client,
    pub seconds: f64,
    pub mib_s: f64,
    /// Speed relative to the fastest peer (for CSAL) or to CSAL (for a peer).
    pub ratio: f64,
    pub rss_mib: f64,
}

impl Comparison {
    pub fn size_mib(&self) -> f64 {
        self.size as f64 / (1024.0 * 1024.0)
    }

    pub fn measures(&self, op: Op) -> &[Measure] {
        match op {
            Op::Upload => &self.upload,
            Op::Download => &self.download,
        }
    }

    pub fn rows(&self, op: Op) -> Vec<Row> {
        let speeds: Vec<f64> = self.measures(op).iter().map(|m| self.size_mib() / m.seconds).collect();
        let csal = speeds[0];
        self.backend
            .clients()
            .iter()
            .zip(self.measures(op))
            .zip(&speeds)
            .map(|((&client, m), &speed)| Row {
                client,
                seconds: m.seconds,
                mib_s: speed,
                ratio: if client == Client::Csal { csal / self.best_peer(op).1 } else { speed / csal },
                rss_mib: mib(m.peak_rss_kib),
            })
            .collect()
    }

    /// The fastest peer and its MiB/s.
    pub fn best_peer(&self, op: Op) -> (Client, f64) {
        self.backend
            .clients()
            .iter()
            .zip(self.measures(op))
            .skip(1)
            .map(|(&c, m)| (c, self.size_mib() / m.seconds))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("every backend has a peer")
    }

    fn notes(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{:.0} MiB generated in {} KiB chunks (never held whole, except where said); best of {} round(s) for uploads and {} for downloads (short transfers get more: full rounds up to {} for at least {} s of uploads, download rounds up to {} for at least {} s of downloads), client order rotated each round; each transfer in its own child process (peak RSS = its VmHWM, worst round)",
            self.size_mib(),
            source::CHUNK >> 10,
            self.rounds,
            self.download_rounds,
            FULL_ROUNDS.max,
            FULL_ROUNDS.secs,
            DOWNLOAD_ROUNDS.max,
            DOWNLOAD_ROUNDS.secs
        )];
        lines.extend(self.backend.upload_notes());
        lines.push(self.backend.download_note());
        lines
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("### {} ({:.0} MiB)\n\n", self.backend.title(), self.size_mib());
        for line in self.notes() {
            out.push_str(&format!("- {line}\n"));
        }
        out.push_str("\n| op | client | seconds | MiB/s | ratio | peak RSS MiB |\n|---|---|---|---|---|---|\n");
        for op in [Op::Upload, Op::Download] {
            for r in self.rows(op) {
                let ratio = if r.client == Client::Csal {
                    format!("**{:.2}x** of the fastest peer", r.ratio)
                } else {
                    format!("{:.2}x of CSAL", r.ratio)
                };
                out.push_str(&format!(
                    "| {} | {} | {:.2} | {:.1} | {ratio} | {:.1} |\n",
                    op.arg(),
                    r.client.label(),
                    r.seconds,
                    r.mib_s,
                    r.rss_mib
                ));
            }
        }
        out
    }

    /// Summary lines: CSAL against the fastest peer per direction, and CSAL's peak RSS.
    pub fn figures(&self) -> Vec<Figure> {
        let mut figures = Vec::new();
        for op in [Op::Upload, Op::Download] {
            let csal = &self.rows(op)[0];
            let (peer, peer_speed) = self.best_peer(op);
            figures.push(Figure {
                name: format!(
                    "{} {} {:.0} MiB: CSAL vs the fastest peer ({})",
                    self.backend.title(),
                    op.arg(),
                    self.size_mib(),
                    peer.label()
                ),
                value: format!("{:.2}x ({:.0} vs {:.0} MiB/s)", csal.ratio, csal.mib_s, peer_speed),
                target: crate::report::parity_target(),
                met: csal.ratio >= crate::report::PARITY,
            });
        }
        let rss = mib(self.upload[0].peak_rss_kib.max(self.download[0].peak_rss_kib));
        figures.push(Figure {
            name: format!("{} {:.0} MiB: peak RSS of one CSAL transfer", self.backend.title(), self.size_mib()),
            value: format!("{rss:.1} MiB"),
            target: format!("<= {RSS_TARGET_MIB:.0} MiB"),
            met: rss <= RSS_TARGET_MIB,
        });
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_transfers_get_more_rounds_up_to_the_cap_and_never_fewer_than_asked() {
        assert_eq!(FULL_ROUNDS.rounds(0.5, 3), 4);
        assert_eq!(FULL_ROUNDS.rounds(0.01, 3), 9);
        assert_eq!(FULL_ROUNDS.rounds(30.0, 3), 3);
        assert_eq!(FULL_ROUNDS.rounds(0.01, 12), 12);
        assert_eq!(DOWNLOAD_ROUNDS.rounds(0.5, 3), 20);
        assert_eq!(DOWNLOAD_ROUNDS.rounds(0.1, 3), 30);
        assert_eq!(DOWNLOAD_ROUNDS.rounds(5.0, 3), 3);
    }
}
