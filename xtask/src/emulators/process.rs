//! Child processes of emulators, and readiness probes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Every process xtask started and has not stopped yet (pid, stop
/// signal), oldest first: what [`stop_all_on_signal`] stops.
static LIVE: Mutex<Vec<(u32, &'static str)>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<(u32, &'static str)>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Remember `pid` (a server, or the command run under them) until
/// [`untrack`]; xtask stops it if it is itself stopped.
pub fn track(pid: u32, stop_signal: &'static str) {
    live().push((pid, stop_signal));
}

pub fn untrack(pid: u32) {
    live().retain(|&(p, _)| p != pid);
}

/// When xtask gets SIGINT, SIGTERM or SIGHUP, stop every process it
/// started (newest first), then exit. Without this, a bench or test run
/// stopped by hand left its dozen servers holding their ports, and the
/// next run failed on them ("127.0.0.1:8083 is already taken").
pub fn stop_all_on_signal() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let started = std::mem::take(&mut *live());
            eprintln!("xtask: signal {signal}: stopping {} processes it started", started.len());
            for (pid, stop_signal) in started.into_iter().rev() {
                Process::adopt("", pid, stop_signal).stop();
            }
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

/// A server process we started; stopped by pid with SIGTERM (then SIGKILL).
pub struct Process {
    name: String,
    pid: u32,
    child: Option<Child>,
    stop_signal: &'static str,
}

impl Process {
    /// Spawn `cmd` with output to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Process> {
        let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("spawning {name} ({:?})", cmd.get_program()))?;
        track(child.id(), "TERM");
        Ok(Process { name: name.to_owned(), pid: child.id(), child: Some(child), stop_signal: "TERM" })
    }

    /// Adopt a daemon we started indirectly (its pid read from a pid file).
    pub fn adopt(name: &str, pid: u32, stop_signal: &'static str) -> Process {
        track(pid, stop_signal);
        Process { name: name.to_owned(), pid, child: None, stop_signal }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Fail early if the process already exited (bad config, port in use).
    pub fn check_alive(&mut self, log: &Path) -> Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait()?
        {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = tail.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            bail!("{} exited with {status}:\n{tail}", self.name);
        }
        Ok(())
    }

    /// Signal, then wait up to 10 s for the process to go (SIGKILL after).
    pub fn stop(mut self) {
        untrack(self.pid);
        let _ = Command::new("kill").arg(format!("-{}", self.stop_signal)).arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let gone = match &mut self.child {
                Some(c) => c.try_wait().map(|s| s.is_some()).unwrap_or(true),
                None => !Path::new(&format!("/proc/{}", self.pid)).exists(),
            };
            if gone {
                return;
            }
            if Instant::now() > deadline {
                let _ = Command::new("kill").arg("-KILL").arg(self.pid.to_string()).status();
                if let Some(c) = &mut self.child {
                    let _ = c.wait();
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Wait until 127.0.0.1:`port` accepts TCP connections.
pub fn wait_port(port: u16, timeout: Duration) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listening on 127.0.0.1:{port} after {timeout:?}")
}

/// Wait until an HTTP server on 127.0.0.1:`port` answers `GET path` with any status.
pub fn wait_http(port: u16, path: &str, timeout: Duration) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.write_all(req.as_bytes()).is_ok() && s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("no HTTP answer from 127.0.0.1:{port}{path} after {timeout:?}")
}

/// Run a command to completion, failing with its output if it fails.
pub fn run_checked(what: &str, cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// `apt-get install` packages (as root), running `apt-get update` once if needed.
pub fn apt_install(packages: &[&str]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let lists_empty = std::fs::read_dir("/var/lib/apt/lists")
        .map(|d| !d.flatten().any(|e| e.file_name().to_string_lossy().ends_with("_Packages")))
        .unwrap_or(true);
    if lists_empty {
        run_checked("apt-get update", Command::new("apt-get").args(["update", "-q"]))?;
    }
    run_checked(
        &format!("apt-get install {}", missing.join(" ")),
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing),
    )
}

/// A Python venv under the cache with `packages` pip-installed (once).
pub fn pip_venv(cache: &Path, name: &str, packages: &[&str]) -> Result<std::path::PathBuf> {
    let venv = cache.join(name);
    let marker = venv.join(format!(".installed-{}", packages.join("+").replace(['/', '=', '[', ']', '\''], "_")));
    if marker.exists() {
        return Ok(venv);
    }
    let _ = std::fs::remove_dir_all(&venv);
    run_checked("python3 -m venv", Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run_checked(
        &format!("pip install {}", packages.join(" ")),
        Command::new(venv.join("bin/pip")).args(["install", "-q"]).args(packages),
    )?;
    std::fs::write(&marker, b"")?;
    Ok(venv)
}

/// An npm package installed under the cache (once).
pub fn npm_install(cache: &Path, name: &str, package: &str) -> Result<std::path::PathBuf> {
    let dir = cache.join(name);
    let marker = dir.join(format!(".installed-{}", package.replace(['/', '@'], "_")));
    if marker.exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    run_checked(
        &format!("npm install {package}"),
        Command::new("npm").arg("install").arg("--prefix").arg(&dir).args(["--no-fund", "--no-audit", package]),
    )?;
    std::fs::write(&marker, b"")?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_processes_are_tracked_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let process = Process::spawn("sleep", Command::new("sleep").arg("30"), &dir.path().join("log")).unwrap();
        let pid = process.pid();
        assert!(live().iter().any(|&(p, _)| p == pid), "a started server is not stopped with xtask");
        process.stop();
        assert!(!live().iter().any(|&(p, _)| p == pid), "a stopped server is still tracked");
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "the stopped server still runs");
    }
}
