//! Peak memory of 1 GiB streamed through the cloud providers (`gcs` on
//! fake-gcs-server, `azure_blob` on Azurite), in child processes. `cargo
//! xtask bench` starts the emulators and passes their `CSAL_TEST_*`
//! variables; without them the figures say so instead of a number.

use anyhow::{Context, Result};
use csal_core::{StorageModule, WriteMeta};
use futures::StreamExt;

use crate::Figure;
use crate::rss::{generated, peak_rss_kib};

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// The module for `provider` on its emulator, with its bucket/container made.
async fn module(provider: &str) -> Result<Box<dyn StorageModule>> {
    match provider {
        "gcs" => {
            let endpoint = env("CSAL_TEST_GCS_ENDPOINT").context("CSAL_TEST_GCS_ENDPOINT")?;
            let cfg = serde_json::json!({ "bucket": "csal-bench", "endpoint": endpoint });
            let module = csal_gcs::GcsModule::new(serde_json::from_value(cfg)?)?;
            module.create_bucket("csal-bench").await?;
            Ok(Box::new(module))
        }
        "azure_blob" => {
            let cfg = serde_json::json!({
                "account": env("CSAL_TEST_AZURE_ACCOUNT").context("CSAL_TEST_AZURE_ACCOUNT")?,
                "account_key": env("CSAL_TEST_AZURE_KEY").context("CSAL_TEST_AZURE_KEY")?,
                "endpoint": env("CSAL_TEST_AZURE_ENDPOINT").context("CSAL_TEST_AZURE_ENDPOINT")?,
                "container": "csal-bench",
            });
            let module = csal_azure_blob::AzureBlobModule::new(serde_json::from_value(cfg)?)?;
            module.create_container().await?;
            Ok(Box::new(module))
        }
        other => anyhow::bail!("no cloud benchmark for {other}"),
    }
}

/// Child side: stream `size` bytes up (unknown length, default chunk size)
/// and back down, then print the peak RSS in KiB.
pub async fn stream_through(provider: &str, size: u64) -> Result<()> {
    let module = module(provider).await?;
    let receipt = module.write(generated(size), WriteMeta::new("bench/rss.bin")).await?;
    let mut read = module.read(&receipt.object_id, None).await?;
    let mut total = 0;
    while let Some(c) = read.next().await {
        total += c?.len() as u64;
    }
    module.delete(&receipt.object_id).await?;
    anyhow::ensure!(total == size, "read back {total} of {size}");
    println!("{}", peak_rss_kib()?);
    Ok(())
}

pub fn peaks(size: u64) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for (provider, server, var) in
        [("gcs", "fake-gcs-server", "CSAL_TEST_GCS_ENDPOINT"), ("azure_blob", "Azurite", "CSAL_TEST_AZURE_ENDPOINT")]
    {
        let name = format!("peak RSS streaming {} MiB through {provider} on {server} (write + read)", size >> 20);
        if env(var).is_none() {
            figures.push(Figure {
                name,
                value: format!("not run ({var} unset)"),
                target: "<= 64 MiB".into(),
                met: false,
            });
            continue;
        }
        let peak = crate::rss::child(&["--size", &size.to_string(), "rss-cloud", provider])?;
        let mib = peak as f64 / 1024.0;
        figures.push(Figure { name, value: format!("{mib:.1} MiB"), target: "<= 64 MiB".into(), met: mib <= 64.0 });
    }
    Ok(figures)
}
