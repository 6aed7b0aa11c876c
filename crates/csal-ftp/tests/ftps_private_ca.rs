//! A private CA for FTPS (`ca_file`): the test makes a CA and a server
//! certificate for 127.0.0.1 (csal-testkit's `TestCa`) and starts its own
//! vsftpd (the binary and the `csaltest` user that `cargo xtask` set up for
//! the FTP tests) with explicit TLS required, on a free loopback port.
//! FTPS starts TLS inside the protocol (`AUTH TLS`), so no proxy can stand in.

csal_core::link_providers!(csal_ftp);

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use csal_conformance::require_env;
use csal_testkit::tls::TestCa;
use serde_json::json;

/// vsftpd killed when the test ends.
struct Vsftpd(Child);

impl Drop for Vsftpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// vsftpd with FTPS required, presenting `ca`'s server certificate.
fn start_vsftpd(ca: &TestCa, port: u16) -> Vsftpd {
    let empty = ca.dir().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let conf = ca.dir().join("vsftpd.conf");
    // As xtask's FTPS server (xtask/src/emulators/vsftpd.rs), passive ports of its own.
    std::fs::write(
        &conf,
        format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nbackground=NO\nanonymous_enable=NO\n\
             local_enable=YES\nwrite_enable=YES\nlocal_umask=022\npasv_address=127.0.0.1\n\
             secure_chroot_dir={empty}\npam_service_name=vsftpd\nseccomp_sandbox=NO\nisolate=NO\n\
             isolate_network=NO\nlisten_port={port}\npasv_min_port=30020\npasv_max_port=30029\n\
             ssl_enable=YES\nrsa_cert_file={cert}\nrsa_private_key_file={key}\nforce_local_logins_ssl=YES\n\
             force_local_data_ssl=YES\nrequire_ssl_reuse=NO\n",
            empty = empty.display(),
            cert = ca.server_cert_file().display(),
            key = ca.server_key_file().display(),
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/vsftpd")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start vsftpd (installed by cargo xtask for the FTP tests)");
    let server = Vsftpd(child);
    // Ready when it accepts connections (polled, bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "vsftpd did not listen on {port} within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ftps_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let label = "ftps-private-ca";
    // The FTP servers' env: vsftpd and the test user exist.
    let Some(user) = require_env("CSAL_TEST_FTP_USER", label, "ftp") else { return };
    let Some(password) = require_env("CSAL_TEST_FTP_PASSWORD", label, "ftp") else { return };
    let ca = TestCa::new();
    let port = free_port();
    let _server = start_vsftpd(&ca, port);
    let without_ca = json!({
        "host": "127.0.0.1", "port": port, "username": user, "password": password,
        "base_dir": "csal-ftps-private-ca", "security": "explicit_tls",
    });
    let mut with_ca = without_ca.clone();
    with_ca["ca_file"] = ca.ca_file().into();
    csal_conformance::tls::private_ca("ftp", with_ca, without_ca).await;
}
