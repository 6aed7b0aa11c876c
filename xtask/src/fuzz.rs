//! `cargo xtask fuzz`: every cargo-fuzz target in `fuzz/` for a fixed time.
//!
//! Not part of `cargo xtask test` (CI): it needs minutes per target. The
//! machine has only the stable toolchain, so cargo-fuzz runs on it with
//! `RUSTC_BOOTSTRAP=1`, which lets stable rustc accept the `-Z` flags
//! (sanitizer, coverage instrumentation) cargo-fuzz passes; see
//! fuzz/README.md.
//!
//! Each target starts from its committed seeds (`fuzz/corpus/<target>/`,
//! read only) plus a working corpus under `fuzz/target/corpus/<target>/`
//! (what the fuzzer finds; not committed), so a run leaves the repository
//! clean. A crash stops the run with the input's path under
//! `fuzz/artifacts/<target>/`: copy it into the seeds and add a regression
//! test in the crate that owns the code.

use std::process::Command;

use anyhow::{Result, bail};

use crate::{run, workspace_root};

/// Every target, in the order they run.
pub const TARGETS: &[&str] = &[
    "object_id",
    "key_hint",
    "range",
    "config",
    "webdav_multistatus",
    "azure_list",
    "filesync_tokens",
    "hls_playlist",
];

fn ensure_cargo_fuzz() -> Result<()> {
    let have = Command::new("cargo").args(["fuzz", "--version"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !have {
        run("install cargo-fuzz", Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

fn cargo_fuzz() -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(workspace_root().join("fuzz")).env("RUSTC_BOOTSTRAP", "1").arg("fuzz");
    c
}

/// Build the targets, then run each for `seconds` (0: build only).
pub fn fuzz(targets: &[String], seconds: u64) -> Result<()> {
    let chosen: Vec<&str> = if targets.is_empty() {
        TARGETS.to_vec()
    } else {
        for t in targets {
            if !TARGETS.contains(&t.as_str()) {
                bail!("unknown fuzz target '{t}' (known: {})", TARGETS.join(", "));
            }
        }
        targets.iter().map(String::as_str).collect()
    };
    ensure_cargo_fuzz()?;
    for t in &chosen {
        run(&format!("build fuzz target {t}"), cargo_fuzz().args(["build", "-O", t]))?;
    }
    if seconds == 0 {
        return Ok(());
    }
    let root = workspace_root().join("fuzz");
    let mut failed = Vec::new();
    for t in &chosen {
        let work = root.join("target/corpus").join(t);
        let seeds = root.join("corpus").join(t);
        let artifacts = root.join("artifacts").join(t);
        std::fs::create_dir_all(&work)?;
        std::fs::create_dir_all(&seeds)?;
        std::fs::create_dir_all(&artifacts)?;
        let mut cmd = cargo_fuzz();
        cmd.args(["run", "-O", t]).arg(&work).arg(&seeds).arg("--").args([
            format!("-max_total_time={seconds}"),
            // One slow input is a bug too (a parser gone quadratic).
            "-timeout=10".to_owned(),
            "-rss_limit_mb=2048".to_owned(),
            format!("-artifact_prefix={}/", artifacts.display()),
        ]);
        if let Err(e) = run(&format!("fuzz {t} for {seconds} s"), &mut cmd) {
            eprintln!("xtask: {t}: {e:#}; the input is in {}", artifacts.display());
            failed.push(*t);
        }
    }
    if !failed.is_empty() {
        bail!("fuzz targets found crashes: {}", failed.join(", "));
    }
    eprintln!("xtask: {} fuzz target(s) ran {seconds} s each without a crash", chosen.len());
    Ok(())
}
