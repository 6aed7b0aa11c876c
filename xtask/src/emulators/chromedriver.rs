//! Headless Chromium for the admin UI's browser tests: Debian's `chromium`
//! and `chromium-driver` (no browser download), chromedriver on
//! 127.0.0.1:9515. Sessions must ask for headless Chromium themselves
//! (goog:chromeOptions args; see csal-admin/tests/browser.rs).

use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::{Emulator, Env, Process, Running, apt_install, wait_http};

const PORT: u16 = 9515;

pub struct Chromedriver;

impl Emulator for Chromedriver {
    fn name(&self) -> &'static str {
        "chromedriver"
    }
    fn ports(&self) -> &'static [u16] {
        &[PORT]
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-admin"]
    }
    fn install(&self, _env: &Env) -> Result<()> {
        apt_install(&["chromium", "chromium-driver"])
    }
    fn start(&self, env: &Env) -> Result<Running> {
        // Chromium leaves org.chromium.* folders in TMPDIR: keep them in our run dir.
        let tmp = env.data_dir("chrome-tmp")?;
        let log = env.log_path("chromedriver");
        let mut p = Process::spawn(
            "chromedriver",
            Command::new("/usr/bin/chromedriver")
                .arg(format!("--port={PORT}"))
                .arg("--allowed-ips=127.0.0.1")
                .env("TMPDIR", &tmp),
            &log,
        )?;
        if let Err(e) = wait_http(PORT, "/status", Duration::from_secs(20)) {
            p.check_alive(&log)?;
            p.stop();
            return Err(e);
        }
        Ok(Running {
            name: self.name(),
            env: vec![("CSAL_TEST_WEBDRIVER_URL".into(), format!("http://127.0.0.1:{PORT}"))],
            processes: vec![p],
        })
    }
}
