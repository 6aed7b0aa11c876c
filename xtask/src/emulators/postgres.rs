//! PostgreSQL: a throwaway cluster for the `db` provider and the catalog
//! tests. Debian's `postgresql` package (installed if missing), `initdb` in a
//! fresh directory, `pg_ctl` on 127.0.0.1 (port 15432, or a free one if that
//! is taken), database and role `csal`/`csal` with SCRAM over TCP.
//!
//! initdb and postgres refuse to run as root, so as root they run as the
//! `postgres` user (`runuser`), in a directory under /tmp that user can
//! reach. Stopped with SIGINT (fast shutdown). Exports
//! `CSAL_TEST_POSTGRES_URL=postgres://csal:csal@127.0.0.1:PORT/csal`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{Emulator, Env, Process, Running, apt_install, run_checked, wait_port};

const PREFERRED_PORT: u16 = 15432;

pub struct Postgres;

fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    // Highest major version last ("9" < "15" numerically).
    dirs.sort_by_key(|d| {
        d.parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()).unwrap_or(0)
    });
    dirs.pop()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// `program args...`, as the `postgres` user when we are root.
fn as_cluster_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16> {
    if port_is_free(PREFERRED_PORT) {
        return Ok(PREFERRED_PORT);
    }
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Earlier runs' cluster directories whose server is gone (a live
/// `postmaster.pid` means another run is using it: keep that one).
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with("csal-xtask-pg-") {
            continue;
        }
        let pid_file = entry.path().join("data/postmaster.pid");
        let live = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !live {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Emulator for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-db", "csal-catalog"]
    }
    fn install(&self, _env: &Env) -> Result<()> {
        if bin_dir().is_some() {
            return Ok(());
        }
        apt_install(&["postgresql"])?;
        if bin_dir().is_none() {
            bail!("postgresql installed but no /usr/lib/postgresql/*/bin/initdb found");
        }
        Ok(())
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let bin = bin_dir().context("PostgreSQL is not installed")?;
        let port = free_port()?;
        // Under /tmp so the postgres user can reach it whatever the workspace
        // path's permissions; wiped at every start.
        remove_stale_clusters();
        let dir = std::env::temp_dir().join(format!("csal-xtask-pg-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if is_root() {
            run_checked("chown postgres", Command::new("chown").args(["postgres:"]).arg(&dir))?;
        }
        let data = dir.join("data");
        let log = env.log_path("postgres");
        run_checked(
            "initdb",
            as_cluster_owner(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"])
                .args(["--locale=C.UTF-8", "-N"]),
        )?;
        let server_log = dir.join("server.log");
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c full_page_writes=off -c synchronous_commit=off",
            dir.display()
        );
        let started = run_checked(
            "pg_ctl start",
            as_cluster_owner(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&server_log)
                .args(["-w", "-t", "30", "start", "-o", &options]),
        );
        if let Err(e) = started {
            let tail = std::fs::read_to_string(&server_log).unwrap_or_default();
            let _ = std::fs::write(&log, &tail);
            return Err(e.context(format!("server log:\n{tail}")));
        }
        let pid_text = std::fs::read_to_string(data.join("postmaster.pid")).context("reading postmaster.pid")?;
        let pid: u32 = pid_text.lines().next().unwrap_or("").trim().parse().context("parsing postmaster.pid")?;
        // SIGINT = fast shutdown (SIGTERM would wait for clients to leave).
        let process = Process::adopt("postgres", pid, "INT");
        let setup = wait_port(port, Duration::from_secs(30)).and_then(|()| {
            run_checked(
                "create role and database csal",
                Command::new(bin.join("psql"))
                    .arg("-h")
                    .arg(&dir)
                    .args(["-p", &port.to_string(), "-U", "postgres", "-qX"])
                    .args(["-c", "CREATE USER csal PASSWORD 'csal'", "-c", "CREATE DATABASE csal OWNER csal"]),
            )
        });
        if let Err(e) = setup {
            process.stop();
            return Err(e);
        }
        Ok(Running {
            name: self.name(),
            env: vec![("CSAL_TEST_POSTGRES_URL".into(), format!("postgres://csal:csal@127.0.0.1:{port}/csal"))],
            processes: vec![process],
        })
    }
}
