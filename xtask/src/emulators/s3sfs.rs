//! s3s-fs: an S3 server over a directory, from the s3s project. Unlike moto
//! it verifies SigV4 signatures, so it catches signing and credential bugs.
//! Installed with `cargo install` into the cache (about 8 minutes on 2 cores,
//! once). Buckets are directories; tests create theirs through the S3 API.

use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::{Emulator, Env, Process, Running, run_checked, wait_http};

const PORT: u16 = 8014;
const VERSION: &str = "0.14.1";
/// Test-only credentials (AWS's documented example key pair).
const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

pub struct S3sFs;

fn binary(env: &Env) -> std::path::PathBuf {
    env.cache.join("cargo/bin/s3s-fs")
}

impl Emulator for S3sFs {
    fn name(&self) -> &'static str {
        "s3s-fs"
    }
    fn ports(&self) -> &'static [u16] {
        &[PORT]
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-s3"]
    }
    fn install(&self, env: &Env) -> Result<()> {
        let marker = env.cache.join(format!("cargo/.s3s-fs-{VERSION}"));
        if binary(env).exists() && marker.exists() {
            return Ok(());
        }
        eprintln!("xtask: cargo install s3s-fs {VERSION} (about 8 minutes on 2 cores; cached afterwards)");
        run_checked(
            "cargo install s3s-fs",
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["install", "s3s-fs", "--version", VERSION, "--features", "binary", "--locked", "--root"])
                .arg(env.cache.join("cargo"))
                // Its own target dir, so it never touches the workspace build.
                .env("CARGO_TARGET_DIR", env.cache.join("cargo-build")),
        )?;
        std::fs::write(marker, b"")?;
        Ok(())
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let data = env.data_dir("s3s-fs")?;
        let log = env.log_path("s3s-fs");
        let mut p = Process::spawn(
            "s3s-fs",
            Command::new(binary(env))
                .args(["--host", "127.0.0.1", "--port", &PORT.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&data),
            &log,
        )?;
        if let Err(e) = wait_http(PORT, "/", Duration::from_secs(20)) {
            p.check_alive(&log)?;
            p.stop();
            return Err(e);
        }
        Ok(Running {
            name: self.name(),
            env: vec![
                ("CSAL_TEST_S3_S3SFS_ENDPOINT".into(), format!("http://127.0.0.1:{PORT}")),
                ("CSAL_TEST_S3_S3SFS_ACCESS_KEY".into(), ACCESS_KEY.into()),
                ("CSAL_TEST_S3_S3SFS_SECRET_KEY".into(), SECRET_KEY.into()),
                // For tests that run their own instance to stop and restart it.
                ("CSAL_TEST_S3SFS_BIN".into(), binary(env).display().to_string()),
            ],
            processes: vec![p],
        })
    }
}
