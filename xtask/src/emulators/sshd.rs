//! OpenSSH `sshd` for the `sftp` provider: Debian's openssh-server, our own
//! config on 127.0.0.1:2222, a throwaway ed25519 host key and client key,
//! and the system user `csaltest` (password `csaltest`, or the client key).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{Emulator, Env, Process, Running, apt_install, run_checked, wait_port};

pub const PORT: u16 = 2222;
pub const USER: &str = "csaltest";
pub const PASSWORD: &str = "csaltest";

pub struct Sshd;

impl Emulator for Sshd {
    fn name(&self) -> &'static str {
        "sshd"
    }
    fn ports(&self) -> &'static [u16] {
        &[PORT]
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-sftp"]
    }
    fn install(&self, _env: &Env) -> Result<()> {
        apt_install(&["openssh-server", "openssh-client"])
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let home = csaltest_user(env)?;
        let dir = env.cache.join("ssh");
        std::fs::create_dir_all(&dir)?;
        // sshd insists on its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd")?;
        let host_key = dir.join("host_ed25519");
        let client_key = dir.join("csaltest_ed25519");
        keygen(&host_key, "csal-test-host")?;
        keygen(&client_key, USER)?;
        // sshd reads authorized_keys as the user, so it sits next to the home (world-searchable).
        let authorized = home.parent().unwrap_or(&home).join("csaltest_authorized_keys");
        std::fs::copy(dir.join("csaltest_ed25519.pub"), &authorized)?;
        std::fs::set_permissions(&authorized, std::fs::Permissions::from_mode(0o644))?;
        // The client key is read by the tests (same user, root); keep it private anyway.
        std::fs::set_permissions(&client_key, std::fs::Permissions::from_mode(0o600))?;
        let config = dir.join("sshd_config");
        // StrictModes no: the key files live under the cache, whose parents we do not control.
        // UsePAM no: pam_loginuid breaks logins in containers.
        std::fs::write(
            &config,
            format!(
                "Port {PORT}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile {pid}\nAuthorizedKeysFile {auth}\n\
                 StrictModes no\nUsePAM no\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                 AllowUsers {USER}\nSubsystem sftp internal-sftp\nMaxStartups 100:30:200\nMaxSessions 64\n",
                host = host_key.display(),
                pid = env.run.join("sshd.pid").display(),
                auth = authorized.display(),
            ),
        )?;
        let log = env.log_path("sshd");
        // sshd refuses a relative program path (it re-executes itself).
        let mut p = Process::spawn("sshd", Command::new("/usr/sbin/sshd").args(["-D", "-e", "-f"]).arg(&config), &log)?;
        if let Err(e) = wait_port(PORT, Duration::from_secs(10)) {
            p.check_alive(&log)?;
            p.stop();
            return Err(e);
        }
        let fingerprint = host_key_fingerprint(&host_key)?;
        Ok(Running {
            name: self.name(),
            env: vec![
                ("CSAL_TEST_SFTP_HOST".into(), "127.0.0.1".into()),
                ("CSAL_TEST_SFTP_PORT".into(), PORT.to_string()),
                ("CSAL_TEST_SFTP_USER".into(), USER.into()),
                ("CSAL_TEST_SFTP_PASSWORD".into(), PASSWORD.into()),
                ("CSAL_TEST_SFTP_KEY_FILE".into(), client_key.display().to_string()),
                ("CSAL_TEST_SFTP_HOST_KEY".into(), fingerprint),
                ("CSAL_TEST_SFTP_HOME".into(), home.display().to_string()),
            ],
            processes: vec![p],
        })
    }
}

/// Create an unencrypted ed25519 key pair at `path` (+ `.pub`) unless it exists.
fn keygen(path: &Path, comment: &str) -> Result<()> {
    if path.exists() && path.with_extension("pub").exists() {
        return Ok(());
    }
    let _ = std::fs::remove_file(path);
    run_checked(
        "ssh-keygen",
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"]).arg(path),
    )
}

/// `SHA256:...` of the host key, as `ssh-keygen -l` prints it.
fn host_key_fingerprint(key: &Path) -> Result<String> {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(key.with_extension("pub"))
        .output()
        .context("running ssh-keygen -l")?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().nth(1) {
        Some(fp) if fp.starts_with("SHA256:") => Ok(fp.to_owned()),
        _ => bail!("ssh-keygen -l printed no SHA256 fingerprint: {text}"),
    }
}

/// The system user `csaltest` (password `csaltest`) shared by sshd and vsftpd,
/// with its home under the emulator cache, or the run dir, or the temp dir:
/// the first whose parents other users can pass (a cache under a mode-700
/// /root is not). Returns the home.
pub fn csaltest_user(env: &Env) -> Result<PathBuf> {
    // sshd and vsftpd act as csaltest, who must be able to walk down to the home.
    let candidates = [env.cache.join("home"), env.run.join("home"), std::env::temp_dir().join("csal-emulators-home")];
    let Some(parent) = candidates.iter().find(|p| traversable_by_others(p)) else {
        bail!("no place for the csaltest home that the user can reach (tried {candidates:?})");
    };
    let home = parent.join(USER);
    std::fs::create_dir_all(&home)?;
    let exists = Command::new("id").arg(USER).output().map(|o| o.status.success()).unwrap_or(false);
    if !exists {
        run_checked("useradd csaltest", Command::new("useradd").arg("-d").arg(&home).args(["-s", "/bin/bash", USER]))?;
    } else {
        run_checked("usermod -d", Command::new("usermod").arg("-d").arg(&home).arg(USER))?;
    }
    run_checked("chown csaltest home", Command::new("chown").arg(format!("{USER}:")).arg(&home))?;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755))?;
    let mut chpasswd = Command::new("chpasswd");
    chpasswd.stdin(std::process::Stdio::piped());
    let mut child = chpasswd.spawn().context("running chpasswd")?;
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().context("chpasswd stdin")?;
        stdin.write_all(format!("{USER}:{PASSWORD}\n").as_bytes())?;
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("chpasswd failed: {status}");
    }
    Ok(home)
}

/// Whether every directory from `/` down to `dir` lets other users pass (o+x).
fn traversable_by_others(dir: &Path) -> bool {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        match std::fs::metadata(d) {
            Ok(m) if m.permissions().mode() & 0o001 != 0 => {}
            Ok(_) => return false,
            Err(_) => {} // not created yet: its parent decides
        }
        cur = d.parent();
    }
    true
}
