//! `csal-bench`: the benchmarks behind `cargo xtask bench`.
//!
//! Every figure is a ratio or a difference against a baseline measured in
//! the same run on the same machine, so the numbers mean something on a
//! noisy 2-core box. Peak memory is measured in child processes (their own
//! VmHWM), so one benchmark's allocations cannot hide in another's. A
//! target row that is missed makes the run exit non-zero, after the
//! report and the charts are written.

mod bwlimit;
mod charts;
mod child;
mod contest;
mod env;
mod filesync;
mod gateway;
mod listing;
mod peers;
mod recorder;
mod report;
mod retention;
mod router;
mod rss;
mod source;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

pub use report::Figure;

csal_core::link_providers!(
    csal_local_fs,
    csal_memory,
    csal_gcs,
    csal_azure_blob,
    csal_dropbox,
    csal_box,
    csal_onedrive,
    csal_gdrive,
    csal_pcloud,
    csal_mega,
    csal_s3,
    csal_webdav,
    csal_sftp
);

#[derive(Parser)]
struct Cli {
    /// Sizes of the transfer contests, in bytes (comma separated).
    #[arg(long, value_delimiter = ',', default_values_t = [256u64 << 20, 1 << 30], global = true)]
    sizes: Vec<u64>,
    /// Bytes of one transfer in a child process (set by the parent).
    #[arg(long, default_value_t = 1 << 30, global = true, hide = true)]
    size: u64,
    /// Rounds of every contest (best time of each client is kept).
    #[arg(long, default_value_t = 3, global = true)]
    rounds: u32,
    /// Seconds of each recorder-load run.
    #[arg(long, default_value_t = 60, global = true)]
    recorder_secs: u64,
    /// Rounds of the recorder load (per phase and client; best of them counts).
    #[arg(long, default_value_t = 3, global = true)]
    recorder_rounds: u32,
    /// Concurrent writers of the recorder load.
    #[arg(long, default_value_t = 256, global = true)]
    writers: usize,
    /// The recording gateway's load: simulated cameras ...
    #[arg(long, default_value_t = 200, global = true)]
    cameras: usize,
    /// ... each PUTting a segment of this many KiB ...
    #[arg(long, default_value_t = 2048, global = true)]
    segment_kib: usize,
    /// ... every this many seconds ...
    #[arg(long, default_value_t = 2.0, global = true)]
    interval: f64,
    /// ... for this many seconds.
    #[arg(long, default_value_t = 60, global = true)]
    gateway_secs: u64,
    /// Seconds of the upload-limit run.
    #[arg(long, default_value_t = 60, global = true)]
    bwlimit_secs: u64,
    /// Only these parts (all when omitted).
    #[arg(long, value_delimiter = ',', global = true)]
    only: Vec<Part>,
    /// Write the report as Markdown to this file (and the charts beside it, in `bench/`).
    #[arg(long, global = true)]
    markdown: Option<PathBuf>,
    #[command(subcommand)]
    child: Option<ChildCmd>,
}

/// The parts of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    /// CSAL against aws-sdk-s3, object_store and OpenDAL on s3s-fs.
    S3,
    /// local_fs against tokio::fs and object_store's LocalFileSystem.
    LocalFs,
    /// gcs and azure_blob against object_store on fake-gcs-server and Azurite.
    Cloud,
    /// The recorder-shaped load on s3s-fs (and with faults).
    Recorder,
    /// Router dispatch overhead.
    Dispatch,
    /// Catalog reload with 1,000 instances.
    Catalog,
    /// Peak RSS of the file-sync providers on their fakes.
    FileSync,
    /// Listings of big trees: local_fs vs walkdir / object_store, webdav and sftp.
    Listing,
    /// An upload limit under 16 concurrent uploads.
    Bwlimit,
    /// The recording gateway (`csal serve`'s `/v1/`) under cameras' segment uploads.
    Gateway,
    /// The retention sweep over 1,000,000 indexed segments on local_fs.
    Retention,
}

/// Hidden commands: the parent re-executes this binary for each measurement.
#[derive(Subcommand)]
enum ChildCmd {
    /// One transfer by one client; prints its time and peak RSS as JSON.
    #[command(hide = true)]
    Transfer {
        backend: contest::Backend,
        client: contest::Client,
        op: contest::Op,
        #[arg(long)]
        key: String,
        /// After a download, leave the object (it is read again).
        #[arg(long)]
        keep: bool,
    },
    /// One client's recorder load; prints its outcome as JSON.
    #[command(hide = true)]
    Recorder {
        client: contest::Client,
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        secs: u64,
        #[arg(long)]
        segment: u64,
    },
    /// Print the peak RSS of a process that only starts up.
    #[command(hide = true)]
    RssIdle,
    /// Stream `size` bytes through a file-sync provider (config from the fake-server child).
    #[command(hide = true)]
    RssFileSync { provider: String },
    /// Run a provider's fake and print its instance config until stdin closes.
    #[command(hide = true)]
    FakeServer { provider: String },
    /// Run the recording gateway for the gateway load until stdin closes.
    #[command(hide = true)]
    GatewayChild {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        cameras: usize,
    },
    /// (internal) One listing by one lister; prints its time and peak RSS as JSON.
    #[command(hide = true)]
    ListChild(listing::ChildArgs),
    /// (internal) One retention sweep; prints its time and peak RSS as JSON.
    #[command(hide = true)]
    RetentionChild(retention::ChildArgs),
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let result = match &cli.child {
        Some(child) => rt.block_on(run_child_command(child, &cli)),
        None => rt.block_on(run_all(&cli)),
    };
    if let Err(e) = result {
        eprintln!("csal-bench: error: {e:#}");
        std::process::exit(1);
    }
}

async fn run_child_command(child: &ChildCmd, cli: &Cli) -> Result<()> {
    match child {
        ChildCmd::Transfer { backend, client, op, key, keep } => {
            contest::child(*backend, *client, *op, cli.size, key, *keep).await
        }
        ChildCmd::Recorder { client, endpoint, secs, segment } => {
            let shape = recorder::Shape { writers: cli.writers, segment: *segment, secs: *secs };
            recorder::child(*client, endpoint, shape).await
        }
        ChildCmd::RssIdle => {
            println!("{}", rss::peak_rss_kib()?);
            Ok(())
        }
        ChildCmd::RssFileSync { provider } => filesync::stream_through(provider, cli.size).await,
        ChildCmd::FakeServer { provider } => filesync::serve_fake(provider).await,
        ChildCmd::GatewayChild { dir, cameras } => gateway::gateway_child(dir, *cameras).await,
        ChildCmd::ListChild(args) => listing::child(args).await,
        ChildCmd::RetentionChild(args) => retention::child(args).await,
    }
}

async fn run_all(cli: &Cli) -> Result<()> {
    let wanted = |p: Part| cli.only.is_empty() || cli.only.contains(&p);
    let mut report = report::Report::new(&cli.sizes);
    if wanted(Part::Dispatch)
        && let Some(figures) = report.part("dispatch overhead", router::dispatch_overhead().await)
    {
        report.figures.extend(figures);
    }
    if wanted(Part::Catalog)
        && let Some(figures) = report.part("catalog reload", router::catalog_reload().await)
    {
        report.figures.extend(figures);
    }
    if wanted(Part::Recorder) {
        if let Some(var) = env::missing(contest::Backend::S3) {
            report.figures.push(Figure::not_run("recorder load", var));
        } else {
            let shape = recorder::Shape { writers: cli.writers, segment: 4 << 20, secs: cli.recorder_secs };
            match recorder::disk_short_of(&shape) {
                Some(short) => report.figures.push(short),
                None => {
                    if let Some(load) = report.part("recorder load", recorder::run(shape, cli.recorder_rounds).await) {
                        report.figures.extend(load.figures());
                        report.recorder = Some(load);
                    }
                }
            }
        }
    }
    if wanted(Part::Gateway) {
        let load = gateway::Load {
            cameras: cli.cameras.max(1),
            segment: cli.segment_kib.max(1) * 1024,
            interval: std::time::Duration::from_secs_f64(cli.interval.max(0.1)),
            duration: std::time::Duration::from_secs(cli.gateway_secs.max(1)),
        };
        if let Some((figures, section)) = report.part("gateway load", gateway::figures(load).await) {
            report.figures.extend(figures);
            report.sections.push(section);
        }
    }
    if wanted(Part::FileSync) {
        let size = cli.sizes.iter().copied().max().unwrap_or(1 << 30);
        if let Some(figures) = report.part("file-sync peak RSS", filesync::peaks(size)) {
            report.figures.extend(figures);
            report.filesync_size = Some(size);
        }
    }
    if wanted(Part::Bwlimit)
        && let Some(figures) = report.part("bandwidth limit", bwlimit::limit_holds(cli.bwlimit_secs.max(5)).await)
    {
        report.figures.extend(figures);
    }
    if wanted(Part::Listing)
        && let Some(figures) = report.part("listing", listing::figures())
    {
        report.figures.extend(figures);
    }
    if wanted(Part::Retention)
        && let Some(figures) = report.part("retention sweep", retention::figures().await)
    {
        report.figures.extend(figures);
    }
    // The transfer contests come last, backend by backend, fake-gcs-server's
    // last of all: once it has taken a few GiB of resumable uploads it keeps
    // a core busy (a third of one, seen in the run of 2026-12-05) and holds
    // memory, and Azurite keeps every blob in memory; every part run after
    // them would share the machine with that.
    let backends: Vec<contest::Backend> = contest::Backend::IN_RUN_ORDER
        .into_iter()
        .filter(|b| match b {
            contest::Backend::S3 => wanted(Part::S3),
            contest::Backend::LocalFs => wanted(Part::LocalFs),
            contest::Backend::Gcs | contest::Backend::Azure => wanted(Part::Cloud),
        })
        .collect();
    for &backend in &backends {
        for &size in &cli.sizes {
            if let Some(var) = env::missing(backend) {
                report.figures.push(Figure::not_run(&format!("{} contest", backend.title()), var));
                break;
            }
            let what = format!("{} contest, {} MiB", backend.title(), size >> 20);
            if let Some(comparison) = report.part(&what, contest::compare(backend, size, cli.rounds).await) {
                report.figures.extend(comparison.figures());
                report.add_contest(comparison);
            }
        }
    }
    report.print();
    if let Some(path) = &cli.markdown {
        report.write(path)?;
        eprintln!("csal-bench: report written to {}", path.display());
    }
    let missed = report.missed();
    if !missed.is_empty() {
        eprintln!("\ncsal-bench: {} target row(s) MISSED:", missed.len());
        for f in &missed {
            eprintln!("  MISSED: {} = {} (target {})", f.name, f.value, f.target);
        }
        anyhow::bail!("{} benchmark target(s) missed", missed.len());
    }
    Ok(())
}
