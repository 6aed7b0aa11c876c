// The toolkit below serves every emulator module; not each one uses every helper.
#![allow(dead_code, unused_imports)]

//! Test servers: install into a cache, start on 127.0.0.1, wait until ready,
//! stop by pid. One module per server; each says which provider types need it
//! and which environment variables tell the tests where it is.
//!
//! Provider crates never hard-code ports: their tests read the variables that
//! [`Running::env`] lists (see `csal_conformance::require_env`).

mod apache_dav;
mod azurite;
mod chromedriver;
mod fakegcs;
mod ffmpeg;
mod moto;
mod postgres;
pub(crate) mod process;
mod s3sfs;
mod sshd;
mod swift;
mod vsftpd;
mod wsgidav;

pub use process::{Process, apt_install, npm_install, pip_venv, run_checked, wait_http, wait_port};

use std::path::PathBuf;

use anyhow::Result;

/// Where emulators are installed and run.
pub struct Env {
    /// Installs, kept between runs (`$CSAL_EMULATOR_CACHE`, default `~/.cache/csal-emulators`).
    pub cache: PathBuf,
    /// Data and logs of this run (wiped at start).
    pub run: PathBuf,
    /// In CI a server that cannot start is a failure; locally it is a skip.
    pub ci: bool,
    /// Held while this run uses the emulators: their ports are fixed, so two
    /// checkouts on one machine (worktrees) take turns instead of clashing.
    _lock: std::fs::File,
}

impl Env {
    pub fn new(workspace: &std::path::Path) -> Result<Env> {
        let cache = match std::env::var_os("CSAL_EMULATOR_CACHE") {
            Some(p) => PathBuf::from(p),
            None => {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache/csal-emulators")
            }
        };
        std::fs::create_dir_all(&cache)?;
        let lock = std::fs::File::create(cache.join("xtask.lock"))?;
        if lock.try_lock().is_err() {
            eprintln!("xtask: another checkout is using the emulators (fixed ports); waiting for it to finish ...");
            lock.lock()?;
        }
        let run = workspace.join("target/emulators");
        let _ = std::fs::remove_dir_all(&run);
        std::fs::create_dir_all(&run)?;
        Ok(Env { cache, run, ci: std::env::var_os("CI").is_some(), _lock: lock })
    }

    /// A fresh data directory for one server.
    pub fn data_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.run.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    pub fn log_path(&self, name: &str) -> PathBuf {
        self.run.join(format!("{name}.log"))
    }
}

/// One test server.
pub trait Emulator: Sync {
    /// Short name (`moto`, `postgres`, ...).
    fn name(&self) -> &'static str;
    /// The crates whose tests need this server (`--provider P` finds the
    /// crate of provider type P in the registry).
    fn crates(&self) -> &'static [&'static str];
    /// Install into `env.cache` if not there yet (idempotent).
    fn install(&self, env: &Env) -> Result<()>;
    /// Start, wait until ready, return the processes and the test env vars.
    /// Call it through [`install_and_start`], which checks [`Emulator::ports`] first.
    fn start(&self, env: &Env) -> Result<Running>;
    /// The fixed loopback ports it listens on (none when it picks a free one).
    fn ports(&self) -> &'static [u16] {
        &[]
    }
}

/// Install `emulator` if needed, then start it once its ports are free. A
/// server left over from an earlier run would otherwise answer the
/// readiness probe and then the tests, with its own users and keys (CI
/// failed on a stale sshd that way).
pub fn install_and_start(emulator: &dyn Emulator, env: &Env) -> Result<Running> {
    emulator.install(env)?;
    ports_free(emulator.name(), emulator.ports())?;
    emulator.start(env)
}

/// An error naming the first of `ports` something already listens on.
fn ports_free(name: &str, ports: &[u16]) -> Result<()> {
    for &port in ports {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200)).is_ok() {
            anyhow::bail!(
                "{name}: 127.0.0.1:{port} is already taken by another process (a server left from an earlier run? `ss -ltnp 'sport = :{port}'` shows it)"
            );
        }
    }
    Ok(())
}

/// A started server; dropping it stops its processes (by pid, newest first).
pub struct Running {
    pub name: &'static str,
    pub env: Vec<(String, String)>,
    pub processes: Vec<Process>,
}

impl Drop for Running {
    fn drop(&mut self) {
        while let Some(p) = self.processes.pop() {
            p.stop();
        }
    }
}

/// Every emulator xtask knows, in start order.
pub fn all() -> Vec<&'static dyn Emulator> {
    vec![
        &moto::Moto,
        &postgres::Postgres,
        &fakegcs::FakeGcs,
        &azurite::Azurite,
        &s3sfs::S3sFs,
        &wsgidav::Wsgidav,
        &apache_dav::ApacheDav,
        &swift::Swift,
        &sshd::Sshd,
        &vsftpd::Vsftpd,
        &chromedriver::Chromedriver,
        &ffmpeg::Ffmpeg,
    ]
}

/// The crates `wanted` names: provider types (through the registry, so a
/// preset finds its protocol's crate) or crate names (`csal-admin`, `admin`).
pub fn crates_for(wanted: &[String]) -> Result<Vec<String>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let registry = crate::providers::Registry::load()?;
    Ok(wanted
        .iter()
        .map(|w| match registry.crate_of(w) {
            Some(c) => c.to_owned(),
            None if w.starts_with("csal-") => w.clone(),
            None => format!("csal-{}", w.replace('_', "-")),
        })
        .collect())
}

/// Whether `emulator` serves one of `crates` (every emulator when empty).
pub fn serves(emulator: &dyn Emulator, crates: &[String]) -> bool {
    crates.is_empty() || emulator.crates().iter().any(|c| crates.iter().any(|w| w == c))
}

/// Install and start the emulators needed by `providers` (all when empty).
/// A failure is an error in CI, and a printed skip locally (the tests then
/// report their targets as skipped with the reason).
pub fn start_for(env: &Env, providers: &[String]) -> Result<Vec<Running>> {
    let crates = crates_for(providers)?;
    let mut running = Vec::new();
    for emulator in all() {
        let wanted = serves(emulator, &crates);
        if !wanted {
            continue;
        }
        eprintln!("xtask: starting {} ...", emulator.name());
        let started = std::time::Instant::now();
        match install_and_start(emulator, env) {
            Ok(r) => {
                eprintln!("xtask: {} ready in {:.1} s", emulator.name(), started.elapsed().as_secs_f64());
                running.push(r);
            }
            Err(e) if env.ci => {
                return Err(e.context(format!("emulator {} failed to start (required in CI)", emulator.name())));
            }
            Err(e) => eprintln!("xtask: SKIP emulator {}: {e:#} (its tests will be skipped)", emulator.name()),
        }
    }
    Ok(running)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_taken_port_is_refused_before_the_emulator_starts() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let e = super::ports_free("sshd", &[port]).unwrap_err().to_string();
        assert!(e.contains(&format!("127.0.0.1:{port} is already taken")), "{e}");
        drop(taken);
        super::ports_free("sshd", &[port]).unwrap();
    }
}
