//! `csal-bench`: the benchmarks behind `cargo xtask bench`.
//!
//! Every figure is a ratio or a difference against a baseline measured in
//! the same run on the same machine, so the numbers mean something on a
//! noisy 2-core box. Peak memory is measured in a child process (its own
//! VmHWM), so one benchmark's allocations cannot hide in another's.

mod cloud;
mod filesync;
mod listing;
mod local_fs;
mod rss;
mod s3;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

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
    /// Bytes for the large transfers.
    #[arg(long, default_value_t = 1 << 30, global = true)]
    size: u64,
    /// Also write the results as Markdown to this file.
    #[arg(long, global = true)]
    markdown: Option<PathBuf>,
    /// Rounds of the S3 comparison (best time, worst peak RSS).
    #[arg(long, default_value_t = 3, global = true)]
    rounds: u32,
    #[command(subcommand)]
    only: Option<Only>,
}

#[derive(Subcommand)]
enum Only {
    /// Only the S3 comparison: csal-s3 (router) vs aws-sdk-s3, object_store and OpenDAL on s3s-fs
    /// (needs CSAL_TEST_S3_S3SFS_ENDPOINT / _ACCESS_KEY / _SECRET_KEY).
    S3,
    /// (internal) One S3 transfer by one client; prints its time and peak RSS as JSON.
    #[command(hide = true)]
    S3Child {
        client: s3::Client,
        op: s3::Op,
        #[arg(long)]
        key: String,
    },
    /// (internal) Stream `size` bytes through local_fs and print this process's peak RSS.
    RssLocalFs,
    /// (internal) Print the peak RSS of a process that only starts up.
    RssIdle,
    /// (internal) Stream `size` bytes through a cloud provider on its emulator and print the peak RSS.
    RssCloud { provider: String },
    /// (internal) Stream `size` bytes through a file-sync provider (config from the fake-server child).
    RssFileSync { provider: String },
    /// (internal) Run a provider's fake and print its instance config until stdin closes.
    FakeServer { provider: String },
    /// Only the listing rows: local_fs vs walkdir / object_store, webdav and sftp (printed).
    Listing,
    /// (internal) One listing by one lister; prints its time and peak RSS as JSON.
    #[command(hide = true)]
    ListChild(listing::ChildArgs),
}

/// One line of the results table.
pub struct Figure {
    pub name: String,
    pub value: String,
    pub target: String,
    pub met: bool,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match &cli.only {
        Some(Only::S3Child { client, op, key }) => return rt.block_on(s3::child(*client, *op, cli.size, key)),
        Some(Only::S3) => {
            let comparison = rt.block_on(s3::compare(cli.size, cli.rounds))?;
            comparison.print();
            return finish(&comparison.figures(), &[comparison.markdown()], &cli);
        }
        Some(Only::RssLocalFs) => return rt.block_on(rss::stream_through_local_fs(cli.size)),
        Some(Only::RssCloud { provider }) => return rt.block_on(cloud::stream_through(provider, cli.size)),
        Some(Only::RssFileSync { provider }) => return rt.block_on(filesync::stream_through(provider, cli.size)),
        Some(Only::FakeServer { provider }) => return rt.block_on(filesync::serve_fake(provider)),
        Some(Only::ListChild(args)) => return rt.block_on(listing::child(args)),
        Some(Only::Listing) => return finish(&listing::figures()?, &[], &cli),
        Some(Only::RssIdle) => {
            println!("{}", rss::peak_rss_kib()?);
            return Ok(());
        }
        None => {}
    }
    let mut figures = Vec::new();
    figures.extend(rt.block_on(local_fs::throughput(cli.size))?);
    figures.extend(rt.block_on(local_fs::dispatch_overhead())?);
    figures.extend(rss::local_fs_peak(cli.size)?);
    figures.extend(cloud::peaks(cli.size)?);
    figures.extend(filesync::peaks(cli.size)?);
    figures.extend(listing::figures()?);
    let (s3_figures, comparison) = rt.block_on(s3::figures_or_skip(cli.size, cli.rounds))?;
    figures.extend(s3_figures);
    let sections: Vec<String> = comparison.iter().map(s3::Comparison::markdown).collect();
    finish(&figures, &sections, &cli)
}

/// Print the summary table; write the Markdown file if asked.
fn finish(figures: &[Figure], sections: &[String], cli: &Cli) -> Result<()> {
    println!("\n{:<70} {:>26} {:>10}  met", "benchmark", "value", "target");
    for f in figures {
        println!("{:<70} {:>26} {:>10}  {}", f.name, f.value, f.target, if f.met { "yes" } else { "NO" });
    }
    if let Some(path) = &cli.markdown {
        std::fs::write(path, markdown(figures, sections, cli.size))?;
    }
    Ok(())
}

fn markdown(figures: &[Figure], sections: &[String], size: u64) -> String {
    let mut out = String::from("# Benchmarks\n\n");
    out.push_str("Written by `cargo xtask bench` (release build). Every figure compares CSAL with a baseline\n");
    out.push_str("measured in the same run on the same machine; memory is the peak RSS (VmHWM) of a child\n");
    out.push_str("process that does only that transfer.\n\n");
    out.push_str("Reproduce: `cargo xtask bench` (everything; starts the emulators, rewrites this file), or\n");
    out.push_str("`cargo xtask bench --s3-only [--size 67108864] [--rounds 1]` (S3 comparison only, printed).\n\n");
    out.push_str(&format!(
        "Machine: {}, {} cores, {}; load average {} when the run ended; transfer size {} MiB; run at {}.\n\n",
        cpu_model(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        memory_total(),
        load_average(),
        size >> 20,
        humantime_now()
    ));
    out.push_str("| benchmark | value | target | met |\n|---|---|---|---|\n");
    for f in figures {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            f.name,
            f.value,
            f.target,
            if f.met { "yes" } else { "**no**" }
        ));
    }
    for section in sections {
        out.push('\n');
        out.push_str(section);
    }
    out
}

/// `model name` from /proc/cpuinfo.
fn cpu_model() -> String {
    proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into())
}

/// `MemTotal` from /proc/meminfo, in GiB.
fn memory_total() -> String {
    proc_field("/proc/meminfo", "MemTotal")
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(|| "unknown RAM".into(), |kib| format!("{:.0} GiB RAM", kib as f64 / (1024.0 * 1024.0)))
}

/// The 1-minute load average (other work on the box makes throughput noisy).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

fn proc_field(file: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn humantime_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
