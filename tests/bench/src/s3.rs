//! S3: csal-s3 (through the router, as applications use it) against raw
//! aws-sdk-s3 calls, object_store and Apache OpenDAL, all on the same s3s-fs
//! in one run. Every upload and every download runs in a child process of
//! its own (this binary re-executed with the hidden `s3-child` command), so
//! each peak RSS (VmHWM) belongs to one client doing one transfer.
//!
//! The body is generated chunk by chunk (`source`), never held whole;
//! downloads are streamed and discarded, their byte count and CRC32C
//! checked against the source, and the stored size checked with HEAD after
//! each upload, so a short or corrupt transfer fails the benchmark.

mod aws_sdk;
mod csal;
mod object_store_peer;
mod opendal_peer;
pub mod source;

use std::time::Instant;

use anyhow::{Context, Result};

use crate::Figure;
use crate::rss::peak_rss_kib;
use source::Digest;

pub const BUCKET: &str = "csal-bench";
/// Part size and parts in flight, the same for every client.
pub const PART_SIZE: usize = 8 << 20;
pub const CONCURRENCY: usize = 4;
/// Every object of the benchmark lives under this prefix.
const PREFIX: &str = "bench/";
/// Peak RSS target of the csal-s3 process during the upload.
const RSS_TARGET_MIB: f64 = 64.0;

const ENDPOINT_VAR: &str = "CSAL_TEST_S3_S3SFS_ENDPOINT";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    AwsSdkS3,
    CsalS3,
    ObjectStore,
    Opendal,
}

impl Client {
    /// Table order; the first is the baseline.
    const ALL: [Client; 4] = [Client::AwsSdkS3, Client::CsalS3, Client::ObjectStore, Client::Opendal];

    fn label(self) -> &'static str {
        match self {
            Client::AwsSdkS3 => "aws-sdk-s3 (raw calls)",
            Client::CsalS3 => "csal-s3 (router)",
            Client::ObjectStore => "object_store",
            Client::Opendal => "opendal",
        }
    }

    /// The `s3-child` argument (clap's kebab-case name).
    fn arg(self) -> &'static str {
        match self {
            Client::AwsSdkS3 => "aws-sdk-s3",
            Client::CsalS3 => "csal-s3",
            Client::ObjectStore => "object-store",
            Client::Opendal => "opendal",
        }
    }

    /// What each sends to let the server check an upload (their defaults).
    fn upload_checksum(self) -> &'static str {
        match self {
            Client::AwsSdkS3 => "SDK default (CRC32 trailer per part)",
            Client::CsalS3 => "CRC32C per part (csal-s3 default)",
            Client::ObjectStore => "none (default)",
            Client::Opendal => "none (default)",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    Upload,
    Download,
}

impl Op {
    fn arg(self) -> &'static str {
        match self {
            Op::Upload => "upload",
            Op::Download => "download",
        }
    }
}

/// The S3 server, from the variables xtask's s3s-fs emulator exports.
pub struct Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

impl Server {
    pub fn from_env() -> Option<Server> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Server {
            endpoint: var(ENDPOINT_VAR)?,
            access_key: var("CSAL_TEST_S3_S3SFS_ACCESS_KEY")?,
            secret_key: var("CSAL_TEST_S3_S3SFS_SECRET_KEY")?,
        })
    }

    fn required() -> Result<Server> {
        Server::from_env().with_context(|| {
            format!("{ENDPOINT_VAR} and its _ACCESS_KEY / _SECRET_KEY are unset (run under `cargo xtask bench`)")
        })
    }
}

/// One client's two transfers. `upload` returns the id to read the object back by.
pub(crate) trait Peer {
    async fn upload(&self, key: &str, size: u64) -> Result<String>;
    async fn download(&self, key: &str) -> Result<Digest>;
}

/// What a child prints, as its last line of stdout.
#[derive(serde::Serialize, serde::Deserialize)]
struct Outcome {
    seconds: f64,
    /// Object id to read back (after an upload) or the one read.
    key: String,
    /// Of the downloaded body.
    digest: Option<Digest>,
    peak_rss_kib: u64,
}

// ---- child side ----

/// Child: one transfer by one client; prints an [`Outcome`].
pub async fn child(client: Client, op: Op, size: u64, key: &str) -> Result<()> {
    let server = Server::required()?;
    let outcome = match client {
        Client::AwsSdkS3 => timed(&aws_sdk::AwsSdk::new(&server), op, size, key).await?,
        Client::CsalS3 => timed(&csal::Csal::new(&server), op, size, key).await?,
        Client::ObjectStore => timed(&object_store_peer::ObjectStore::new(&server)?, op, size, key).await?,
        Client::Opendal => timed(&opendal_peer::OpenDal::new(&server)?, op, size, key).await?,
    };
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

/// Times the transfer alone (client set up before, digest checked after by the parent).
async fn timed(peer: &impl Peer, op: Op, size: u64, key: &str) -> Result<Outcome> {
    let started = Instant::now();
    let (key, digest) = match op {
        Op::Upload => (peer.upload(key, size).await?, None),
        Op::Download => (key.to_owned(), Some(peer.download(key).await?)),
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(Outcome { seconds, key, digest, peak_rss_kib: peak_rss_kib()? })
}

// ---- parent side ----

/// Best time and worst peak RSS of one client for one operation.
#[derive(Clone, Copy)]
struct Measure {
    seconds: f64,
    peak_rss_kib: u64,
}

impl Measure {
    fn merge(self, other: Measure) -> Measure {
        Measure { seconds: self.seconds.min(other.seconds), peak_rss_kib: self.peak_rss_kib.max(other.peak_rss_kib) }
    }
}

/// The results of [`compare`], indexed like [`Client::ALL`].
pub struct Comparison {
    size: u64,
    rounds: u32,
    idle_kib: u64,
    upload: Vec<Measure>,
    download: Vec<Measure>,
}

async fn run_child(args: &[&str]) -> Result<String> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
    anyhow::ensure!(
        out.status.success(),
        "`csal-bench {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let stdout = String::from_utf8(out.stdout)?;
    Ok(stdout.trim().lines().last().context("child printed nothing")?.to_owned())
}

async fn transfer(client: Client, op: Op, size: u64, key: &str) -> Result<Outcome> {
    let size = size.to_string();
    let line = run_child(&["--size", &size, "s3-child", client.arg(), op.arg(), "--key", key]).await?;
    serde_json::from_str(&line).with_context(|| format!("child output {line:?}"))
}

async fn ensure_bucket(sdk: &aws_sdk_s3::Client) -> Result<()> {
    // Already there (an earlier run) is fine; HEAD below is the real check.
    let _ = sdk.create_bucket().bucket(BUCKET).send().await;
    sdk.head_bucket().bucket(BUCKET).send().await.with_context(|| format!("bucket {BUCKET}"))?;
    Ok(())
}

/// Delete everything under [`PREFIX`] (leftovers of a failed run, or this round's objects).
async fn clean(sdk: &aws_sdk_s3::Client) -> Result<()> {
    let listed = sdk.list_objects_v2().bucket(BUCKET).prefix(PREFIX).send().await?;
    for object in listed.contents() {
        if let Some(key) = object.key() {
            sdk.delete_object().bucket(BUCKET).key(key).send().await?;
        }
    }
    Ok(())
}

/// The stored object must have exactly `size` bytes.
async fn check_stored(sdk: &aws_sdk_s3::Client, client: Client, key: &str, size: u64) -> Result<()> {
    let head = sdk.head_object().bucket(BUCKET).key(key).send().await.with_context(|| format!("HEAD {key}"))?;
    let stored = head.content_length().unwrap_or(-1);
    anyhow::ensure!(stored == size as i64, "{}: stored {stored} bytes of {size}", client.label());
    Ok(())
}

/// One upload and one download by `client`, each in its own child, both checked.
async fn round_trip(
    sdk: &aws_sdk_s3::Client,
    client: Client,
    size: u64,
    expected: Digest,
    key: &str,
) -> Result<(Measure, Measure)> {
    let up = transfer(client, Op::Upload, size, key).await?;
    check_stored(sdk, client, &up.key, size).await?;
    let down = transfer(client, Op::Download, size, &up.key).await?;
    anyhow::ensure!(
        down.digest == Some(expected),
        "{}: downloaded {:?}, expected {expected:?}",
        client.label(),
        down.digest
    );
    sdk.delete_object().bucket(BUCKET).key(&up.key).send().await?;
    let measure = |o: &Outcome| Measure { seconds: o.seconds, peak_rss_kib: o.peak_rss_kib };
    Ok((measure(&up), measure(&down)))
}

/// Every client, `rounds` times (order rotated each round so none always
/// goes first); best time, worst peak RSS.
pub async fn compare(size: u64, rounds: u32) -> Result<Comparison> {
    anyhow::ensure!(size > 0, "--size must be at least 1 byte");
    let server = Server::required()?;
    let sdk = aws_sdk::client(&server);
    ensure_bucket(&sdk).await?;
    clean(&sdk).await?;
    let idle_kib = run_child(&["rss-idle"]).await?.parse()?;
    let expected = Digest::of_source(size);
    let mut upload: Vec<Option<Measure>> = vec![None; Client::ALL.len()];
    let mut download = upload.clone();
    for round in 0..rounds.max(1) {
        let mut order: Vec<usize> = (0..Client::ALL.len()).collect();
        order.rotate_left(round as usize % Client::ALL.len());
        for i in order {
            let client = Client::ALL[i];
            eprintln!("csal-bench: s3 round {}/{}: {}", round + 1, rounds.max(1), client.label());
            let key = format!("{PREFIX}{}-{round}.bin", client.arg());
            let (up, down) = round_trip(&sdk, client, size, expected, &key).await?;
            upload[i] = Some(upload[i].map_or(up, |m| m.merge(up)));
            download[i] = Some(download[i].map_or(down, |m| m.merge(down)));
        }
    }
    clean(&sdk).await?;
    let done = |v: Vec<Option<Measure>>| v.into_iter().map(|m| m.expect("every client ran")).collect();
    Ok(Comparison { size, rounds: rounds.max(1), idle_kib, upload: done(upload), download: done(download) })
}

// ---- report ----

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Comparison {
    fn size_mib(&self) -> f64 {
        self.size as f64 / (1024.0 * 1024.0)
    }

    fn index(client: Client) -> usize {
        Client::ALL.iter().position(|c| *c == client).expect("listed")
    }

    /// (client, seconds, MiB/s, speed relative to aws-sdk-s3, peak RSS MiB) per client.
    fn rows(&self, op: Op) -> Vec<(Client, f64, f64, f64, f64)> {
        let measures = match op {
            Op::Upload => &self.upload,
            Op::Download => &self.download,
        };
        let base = measures[Self::index(Client::AwsSdkS3)].seconds;
        Client::ALL
            .iter()
            .zip(measures)
            .map(|(c, m)| (*c, m.seconds, self.size_mib() / m.seconds, base / m.seconds, mib(m.peak_rss_kib)))
            .collect()
    }

    pub fn settings(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "{:.0} MiB generated in {} KiB chunks (never held whole); s3s-fs on 127.0.0.1; best of {} round(s), client order rotated each round",
                self.size_mib(),
                source::CHUNK >> 10,
                self.rounds
            ),
            format!(
                "upload: multipart, {} MiB parts, {CONCURRENCY} in flight, for every client; download: one streaming GET, bytes counted and CRC32C-checked",
                PART_SIZE >> 20
            ),
            format!(
                "each upload and each download in its own child process; peak RSS = its VmHWM (worst round; an idle process: {:.1} MiB)",
                mib(self.idle_kib)
            ),
            "speed ratio = client MiB/s / aws-sdk-s3 MiB/s (above 1: faster than the raw SDK); on a busy machine the ratios move by 10-30 % from run to run, so compare clients within one run".into(),
        ];
        for c in Client::ALL {
            lines.push(format!("upload checksum, {}: {}", c.label(), c.upload_checksum()));
        }
        lines
    }

    pub fn print(&self) {
        println!("\nS3 comparison");
        for line in self.settings() {
            println!("  {line}");
        }
        for op in [Op::Upload, Op::Download] {
            println!(
                "\n{:<24} {:>8} {:>9} {:>14} {:>13}",
                op.arg(),
                "seconds",
                "MiB/s",
                "vs aws-sdk-s3",
                "peak RSS MiB"
            );
            for (c, secs, speed, ratio, rss) in self.rows(op) {
                println!("{:<24} {secs:>8.2} {speed:>9.1} {:>14} {rss:>13.1}", c.label(), format!("{ratio:.2}x"));
            }
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from("## S3: csal-s3 against aws-sdk-s3, object_store and OpenDAL\n\n");
        for line in self.settings() {
            out.push_str(&format!("- {line}\n"));
        }
        for op in [Op::Upload, Op::Download] {
            out.push_str(&format!(
                "\n### {}\n\n| client | seconds | MiB/s | vs aws-sdk-s3 | peak RSS MiB |\n|---|---|---|---|---|\n",
                op.arg()
            ));
            for (c, secs, speed, ratio, rss) in self.rows(op) {
                out.push_str(&format!("| {} | {secs:.2} | {speed:.1} | {ratio:.2}x | {rss:.1} |\n", c.label()));
            }
        }
        out
    }

    /// The lines for the summary table: csal-s3's ratios and its upload RSS.
    pub fn figures(&self) -> Vec<Figure> {
        let csal = Self::index(Client::CsalS3);
        let mut figures = Vec::new();
        for op in [Op::Upload, Op::Download] {
            let rows = self.rows(op);
            let (_, _, speed, ratio, _) = rows[csal];
            let base_speed = rows[Self::index(Client::AwsSdkS3)].2;
            figures.push(Figure {
                name: format!("csal-s3 {} {:.0} MiB vs raw aws-sdk-s3 (s3s-fs)", op.arg(), self.size_mib()),
                value: format!("{ratio:.2}x ({speed:.0} vs {base_speed:.0} MiB/s)"),
                target: ">= 0.90x".into(),
                met: ratio >= 0.9,
            });
        }
        let rss = mib(self.upload[csal].peak_rss_kib);
        figures.push(Figure {
            name: format!("peak RSS of the csal-s3 process uploading {:.0} MiB (router, s3s-fs)", self.size_mib()),
            value: format!("{rss:.1} MiB"),
            target: format!("<= {RSS_TARGET_MIB:.0} MiB"),
            met: rss <= RSS_TARGET_MIB,
        });
        figures
    }
}

/// For the full run: the comparison if s3s-fs is there, else a line saying why not.
pub async fn figures_or_skip(size: u64, rounds: u32) -> Result<(Vec<Figure>, Option<Comparison>)> {
    if Server::from_env().is_none() {
        let figure = Figure {
            name: "S3 comparison (csal-s3, aws-sdk-s3, object_store, opendal)".into(),
            value: format!("not run ({ENDPOINT_VAR} unset)"),
            target: "-".into(),
            met: false,
        };
        return Ok((vec![figure], None));
    }
    let comparison = compare(size, rounds).await?;
    comparison.print();
    Ok((comparison.figures(), Some(comparison)))
}
