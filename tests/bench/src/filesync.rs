//! Peak memory of 1 GiB streamed through the file-sync providers, which
//! have no emulator: each fake (csal-fakes) runs in its own child process,
//! so the 1 GiB it stores never counts against the measured client process,
//! which drives the provider through the router with its default chunk size.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use csal_core::{InstanceDefinition, StorageRouter};

use crate::Figure;
use crate::rss::{child_with_env, peak_rss_kib, round_trip};

/// Providers measured here, in table order.
pub const PROVIDERS: &[&str] = &["dropbox", "onedrive", "gdrive", "box", "pcloud", "mega"];

/// Env var carrying the instance config from the parent to the client child.
const CONFIG_VAR: &str = "CSAL_BENCH_FAKE_CONFIG";

/// Fake side: start `provider`'s fake, print the instance config (one JSON
/// line) and serve until stdin closes (the parent holds it open).
pub async fn serve_fake(provider: &str) -> Result<()> {
    use csal_fakes::*;
    // Keep the fake alive (its server stops on drop) while the client runs.
    let (config, _fake): (serde_json::Value, Box<dyn std::any::Any + Send>) = match provider {
        "dropbox" => {
            let f = dropbox::FakeDropbox::start().await;
            let cfg = serde_json::json!({
                "app_key": dropbox::APP_KEY, "app_secret": dropbox::APP_SECRET,
                "refresh_token": dropbox::REFRESH_TOKEN, "root_path": "/bench",
                "api_url": f.base_url(), "content_url": f.base_url(), "token_url": f.token_url(),
            });
            (cfg, Box::new(f))
        }
        "onedrive" => {
            let f = onedrive::FakeOneDrive::start().await;
            let cfg = serde_json::json!({
                "client_id": onedrive::CLIENT_ID, "client_secret": onedrive::CLIENT_SECRET,
                "refresh_token": onedrive::REFRESH_TOKEN, "root_path": "/bench",
                "graph_url": f.graph_url(), "token_url": f.token_url(),
            });
            (cfg, Box::new(f))
        }
        "gdrive" => {
            let f = gdrive::FakeGoogleDrive::start().await;
            let cfg = serde_json::json!({
                "client_id": gdrive::CLIENT_ID, "client_secret": gdrive::CLIENT_SECRET,
                "refresh_token": gdrive::REFRESH_TOKEN, "api_url": f.api_url(), "token_url": f.token_url(),
            });
            (cfg, Box::new(f))
        }
        "box" => {
            let f = boxapi::FakeBox::start().await;
            let cfg = serde_json::json!({
                "client_id": boxapi::CLIENT_ID, "client_secret": boxapi::CLIENT_SECRET,
                "refresh_token": boxapi::REFRESH_TOKEN,
                "api_url": f.api_url(), "upload_url": f.upload_url(), "token_url": f.token_url(),
            });
            (cfg, Box::new(f))
        }
        "pcloud" => {
            let f = pcloud::PcloudFake::start().await;
            let cfg = serde_json::json!({
                "api_url": f.url(), "root": "/bench",
                "username": pcloud::USERNAME, "password": pcloud::PASSWORD,
            });
            (cfg, Box::new(f))
        }
        "mega" => {
            let f = mega::MegaFake::start().await;
            let cfg = serde_json::json!({
                "api_url": f.url(), "email": mega::EMAIL, "password": mega::PASSWORD, "root": "bench",
            });
            (cfg, Box::new(f))
        }
        other => anyhow::bail!("no fake for {other}"),
    };
    println!("{config}");
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await??;
    Ok(())
}

/// Client side: stream `size` bytes up and back down through the router,
/// then print this process's peak RSS in KiB.
pub async fn stream_through(provider: &str, size: u64) -> Result<()> {
    let config: serde_json::Value = serde_json::from_str(&std::env::var(CONFIG_VAR).context(CONFIG_VAR)?)?;
    let router = StorageRouter::from_definitions(&[InstanceDefinition::new("bench", provider, config)]);
    round_trip(&router, "bench", size).await?;
    println!("{}", peak_rss_kib()?);
    Ok(())
}

fn peak(provider: &str, size: u64) -> Result<u64> {
    let exe = std::env::current_exe()?;
    let mut fake =
        Command::new(&exe).args(["fake-server", provider]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    let mut line = String::new();
    BufReader::new(fake.stdout.take().context("fake stdout")?).read_line(&mut line)?;
    let result = child_with_env(&["--size", &size.to_string(), "rss-file-sync", provider], CONFIG_VAR, line.trim());
    drop(fake.stdin.take()); // the fake exits when its stdin closes
    if fake.try_wait()?.is_none() {
        fake.kill().ok();
    }
    fake.wait()?;
    result
}

pub fn peaks(size: u64) -> Result<Vec<Figure>> {
    PROVIDERS
        .iter()
        .map(|provider| {
            let mib = peak(provider, size)? as f64 / 1024.0;
            Ok(Figure {
                name: format!("peak RSS streaming {} MiB through {provider} on its fake (write + read)", size >> 20),
                value: format!("{mib:.1} MiB"),
                target: "<= 64 MiB".into(),
                met: mib <= 64.0,
            })
        })
        .collect()
}
