//! `csal-bench`: the benchmarks behind `cargo xtask bench`.
//!
//! Every figure is a ratio or a difference against a baseline measured in
//! the same run on the same machine, so the numbers mean something on a
//! noisy 2-core box. Peak memory is measured in a child process (its own
//! VmHWM), so one benchmark's allocations cannot hide in another's.

mod cloud;
mod filesync;
mod local_fs;
mod rss;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

csal_core::link_providers!(
    csal_local_fs,
    csal_memory,
    csal_gcs,
    csal_azure_blob,
    csal_dropbox,
    csal_onedrive,
    csal_gdrive,
    csal_pcloud,
    csal_mega
);

#[derive(Parser)]
struct Cli {
    /// Bytes for the large transfers.
    #[arg(long, default_value_t = 1 << 30, global = true)]
    size: u64,
    /// Also write the results as Markdown to this file.
    #[arg(long, global = true)]
    markdown: Option<PathBuf>,
    #[command(subcommand)]
    only: Option<Only>,
}

#[derive(Subcommand)]
#[allow(clippy::enum_variant_names)] // internal child modes, all RSS probes
enum Only {
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
    match cli.only {
        Some(Only::RssLocalFs) => return rt.block_on(rss::stream_through_local_fs(cli.size)),
        Some(Only::RssCloud { provider }) => return rt.block_on(cloud::stream_through(&provider, cli.size)),
        Some(Only::RssFileSync { provider }) => return rt.block_on(filesync::stream_through(&provider, cli.size)),
        Some(Only::FakeServer { provider }) => return rt.block_on(filesync::serve_fake(&provider)),
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

    println!("\n{:<58} {:>22} {:>14}  met", "benchmark", "value", "target");
    for f in &figures {
        println!("{:<58} {:>22} {:>14}  {}", f.name, f.value, f.target, if f.met { "yes" } else { "NO" });
    }
    if let Some(path) = cli.markdown {
        std::fs::write(&path, markdown(&figures, cli.size))?;
    }
    Ok(())
}

fn markdown(figures: &[Figure], size: u64) -> String {
    let mut out = String::from("# Benchmarks\n\n");
    out.push_str("Written by `cargo xtask bench` (release build). Every figure compares CSAL with a baseline\n");
    out.push_str("measured in the same run on the same machine; memory is the peak RSS (VmHWM) of a child\n");
    out.push_str("process that does only that transfer.\n\n");
    out.push_str(&format!(
        "Machine: {} cores; transfer size {} MiB; run at {}.\n\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
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
    out
}

fn humantime_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
