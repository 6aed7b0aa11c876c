//! Azurite: Microsoft's Azure Storage emulator (blob service only), from
//! npm. In-memory, telemetry off, path-style URLs
//! `http://127.0.0.1:10000/devstoreaccount1/CONTAINER/BLOB`, Shared Key and
//! SAS signatures really checked with the well-known development key.

use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::{Emulator, Env, Process, Running, apt_install, npm_install, wait_http};

const PORT: u16 = 10000;
const PACKAGE: &str = "azurite@3.35.0";
const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's documented, public development key.
const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite;

fn have_npm() -> bool {
    Command::new("npm").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

impl Emulator for Azurite {
    fn name(&self) -> &'static str {
        "azurite"
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-azure-blob"]
    }
    fn install(&self, env: &Env) -> Result<()> {
        if !have_npm() {
            apt_install(&["nodejs", "npm"])?;
        }
        npm_install(&env.cache, "azurite", PACKAGE).map(drop)
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let dir = npm_install(&env.cache, "azurite", PACKAGE)?;
        let log = env.log_path("azurite");
        let mut p = Process::spawn(
            "azurite",
            Command::new(dir.join("node_modules/.bin/azurite-blob")).args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &PORT.to_string(),
                "--inMemoryPersistence",
                "--loose",
                "--skipApiVersionCheck",
                "--disableTelemetry",
                "--silent",
            ]),
            &log,
        )?;
        if let Err(e) = wait_http(PORT, "/", Duration::from_secs(60)) {
            p.check_alive(&log)?;
            p.stop();
            return Err(e);
        }
        Ok(Running {
            name: self.name(),
            env: vec![
                ("CSAL_TEST_AZURE_ENDPOINT".into(), format!("http://127.0.0.1:{PORT}/{ACCOUNT}")),
                ("CSAL_TEST_AZURE_ACCOUNT".into(), ACCOUNT.into()),
                ("CSAL_TEST_AZURE_KEY".into(), KEY.into()),
            ],
            processes: vec![p],
        })
    }
}
