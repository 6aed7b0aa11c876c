//! vsftpd for the `ftp` provider: two servers from Debian's package, plain FTP
//! on 127.0.0.1:2121 (passive ports 30000-30009) and explicit FTPS required on
//! 127.0.0.1:2990 (passive ports 30010-30019, a throwaway self-signed
//! certificate). User `csaltest`/`csaltest` (see `sshd::csaltest_user`).

use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::sshd::{PASSWORD, USER, csaltest_user};
use super::{Emulator, Env, Process, Running, apt_install, run_checked, wait_port};

const FTP_PORT: u16 = 2121;
const FTPS_PORT: u16 = 2990;

pub struct Vsftpd;

impl Emulator for Vsftpd {
    fn name(&self) -> &'static str {
        "vsftpd"
    }
    fn ports(&self) -> &'static [u16] {
        &[FTP_PORT, FTPS_PORT]
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-ftp"]
    }
    fn install(&self, _env: &Env) -> Result<()> {
        apt_install(&["vsftpd", "openssl"])
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let home = csaltest_user(env)?;
        let dir = env.cache.join("ftp");
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty)?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        if !cert.exists() || !key.exists() {
            run_checked(
                "openssl req (self-signed FTPS certificate)",
                Command::new("openssl")
                    .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj", "/CN=127.0.0.1"])
                    .arg("-keyout")
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert),
            )?;
        }
        // seccomp/isolate off: they fail in containers and VMs. require_ssl_reuse=NO: most clients
        // (ours included) open data connections without resuming the control TLS session.
        let common = format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nbackground=NO\nanonymous_enable=NO\n\
             local_enable=YES\nwrite_enable=YES\nlocal_umask=022\npasv_address=127.0.0.1\n\
             secure_chroot_dir={empty}\npam_service_name=vsftpd\nseccomp_sandbox=NO\nisolate=NO\n\
             isolate_network=NO\nmax_clients=200\nmax_per_ip=200\n",
            empty = empty.display()
        );
        let plain = env.run.join("vsftpd-ftp.conf");
        std::fs::write(&plain, format!("{common}listen_port={FTP_PORT}\npasv_min_port=30000\npasv_max_port=30009\n"))?;
        let tls = env.run.join("vsftpd-ftps.conf");
        std::fs::write(
            &tls,
            format!(
                "{common}listen_port={FTPS_PORT}\npasv_min_port=30010\npasv_max_port=30019\nssl_enable=YES\n\
                 rsa_cert_file={cert}\nrsa_private_key_file={key}\nforce_local_logins_ssl=YES\n\
                 force_local_data_ssl=YES\nrequire_ssl_reuse=NO\n",
                cert = cert.display(),
                key = key.display()
            ),
        )?;
        let mut processes = Vec::new();
        for (name, conf, port) in [("vsftpd-ftp", &plain, FTP_PORT), ("vsftpd-ftps", &tls, FTPS_PORT)] {
            let log = env.log_path(name);
            let mut p = Process::spawn(name, Command::new("/usr/sbin/vsftpd").arg(conf), &log)?;
            if let Err(e) = wait_port(port, Duration::from_secs(10)) {
                p.check_alive(&log)?;
                p.stop();
                return Err(e);
            }
            processes.push(p);
        }
        Ok(Running {
            name: self.name(),
            env: vec![
                ("CSAL_TEST_FTP_HOST".into(), "127.0.0.1".into()),
                ("CSAL_TEST_FTP_PORT".into(), FTP_PORT.to_string()),
                ("CSAL_TEST_FTPS_PORT".into(), FTPS_PORT.to_string()),
                ("CSAL_TEST_FTP_USER".into(), USER.into()),
                ("CSAL_TEST_FTP_PASSWORD".into(), PASSWORD.into()),
                ("CSAL_TEST_FTP_HOME".into(), home.display().to_string()),
            ],
            processes,
        })
    }
}
