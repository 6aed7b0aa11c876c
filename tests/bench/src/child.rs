//! Child processes: this binary re-executed with a hidden command, so each
//! measurement has a process (and a peak RSS) of its own.

use anyhow::{Context, Result};

/// Run `csal-bench ARGS` with extra environment variables; its last line of stdout.
pub async fn run_child(args: &[&str], env: &[(String, String)]) -> Result<String> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(args).envs(env.iter().cloned());
    let out = tokio::task::spawn_blocking(move || cmd.output()).await??;
    anyhow::ensure!(
        out.status.success(),
        "`csal-bench {}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let stdout = String::from_utf8(out.stdout)?;
    Ok(stdout.trim().lines().last().context("child printed nothing")?.to_owned())
}
