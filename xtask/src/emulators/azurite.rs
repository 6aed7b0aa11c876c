//! Azurite: Microsoft's Azure Storage emulator (blob service only), from
//! npm. In-memory, telemetry off, path-style URLs
//! `http://127.0.0.1:10000/devstoreaccount1/CONTAINER/BLOB`, Shared Key and
//! SAS signatures really checked with the well-known development key.
//!
//! A second instance serves HTTPS on 10011 with `--oauth basic`: Azurite
//! accepts Entra ID bearer tokens only over HTTPS, and checks their
//! lifetime (`nbf`, `exp`), issuer and audience (not their signature). Its
//! certificate is issued for 127.0.0.1 by a CA made at start (openssl);
//! tests trust that CA through `CSAL_TEST_AZURE_CA_FILE`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::{Emulator, Env, Process, Running, apt_install, npm_install, run_checked, wait_http, wait_port};

const PORT: u16 = 10000;
/// The HTTPS instance that also accepts OAuth bearer tokens.
const OAUTH_PORT: u16 = 10011;
const PACKAGE: &str = "azurite@3.35.0";
const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's documented, public development key.
const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite;

fn have_npm() -> bool {
    Command::new("npm").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

impl Emulator for Azurite {
    fn name(&self) -> &'static str {
        "azurite"
    }
    fn ports(&self) -> &'static [u16] {
        &[PORT, OAUTH_PORT]
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-azure-blob"]
    }
    fn install(&self, env: &Env) -> Result<()> {
        if !have_npm() {
            apt_install(&["nodejs", "npm"])?;
        }
        if Command::new("openssl").arg("version").output().is_err() {
            apt_install(&["openssl"])?;
        }
        npm_install(&env.cache, "azurite", PACKAGE).map(drop)
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let dir = npm_install(&env.cache, "azurite", PACKAGE)?;
        let azurite = dir.join("node_modules/.bin/azurite-blob");
        let common = ["--blobHost", "127.0.0.1", "--inMemoryPersistence", "--loose", "--skipApiVersionCheck"];
        let quiet = ["--disableTelemetry", "--silent"];
        let log = env.log_path("azurite");
        let mut p = Process::spawn(
            "azurite",
            Command::new(&azurite).args(common).args(["--blobPort", &PORT.to_string()]).args(quiet),
            &log,
        )?;
        if let Err(e) = wait_http(PORT, "/", Duration::from_secs(60)) {
            p.check_alive(&log)?;
            p.stop();
            return Err(e);
        }
        let certs = env.data_dir("azurite-oauth")?;
        let (ca, cert, key) = make_certificates(&certs)?;
        let oauth_log = env.log_path("azurite-oauth");
        let mut oauth = Process::spawn(
            "azurite-oauth",
            Command::new(&azurite)
                .args(common)
                .args(["--blobPort", &OAUTH_PORT.to_string(), "--oauth", "basic"])
                .arg("--cert")
                .arg(&cert)
                .arg("--key")
                .arg(&key)
                .args(quiet),
            &oauth_log,
        )?;
        // A TLS port: wait for it to listen (wait_http speaks plain HTTP).
        if let Err(e) = wait_port(OAUTH_PORT, Duration::from_secs(60)) {
            oauth.check_alive(&oauth_log)?;
            oauth.stop();
            p.stop();
            return Err(e);
        }
        Ok(Running {
            name: self.name(),
            env: vec![
                ("CSAL_TEST_AZURE_ENDPOINT".into(), format!("http://127.0.0.1:{PORT}/{ACCOUNT}")),
                ("CSAL_TEST_AZURE_ACCOUNT".into(), ACCOUNT.into()),
                ("CSAL_TEST_AZURE_KEY".into(), KEY.into()),
                ("CSAL_TEST_AZURE_HTTPS_ENDPOINT".into(), format!("https://127.0.0.1:{OAUTH_PORT}/{ACCOUNT}")),
                ("CSAL_TEST_AZURE_CA_FILE".into(), ca.display().to_string()),
            ],
            processes: vec![p, oauth],
        })
    }
}

/// A test CA and a server certificate it issued for 127.0.0.1 (P-256
/// keys, made fresh each run): `(ca.pem, server.pem, server.key)`.
fn make_certificates(dir: &std::path::Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let p = |name: &str| dir.join(name);
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run_checked(
        "openssl req (Azurite test CA)",
        Command::new("openssl")
            .args(["req", "-x509", "-days", "30", "-subj", "/CN=CSAL Azurite test CA"])
            .args(ec)
            .args(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(p("ca.pem")),
    )?;
    run_checked(
        "openssl req (Azurite server key)",
        Command::new("openssl")
            .args(["req", "-subj", "/CN=127.0.0.1"])
            .args(ec)
            .arg("-keyout")
            .arg(p("server.key"))
            .arg("-out")
            .arg(p("server.csr")),
    )?;
    std::fs::write(
        p("server.ext"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )?;
    run_checked(
        "openssl x509 (Azurite server certificate)",
        Command::new("openssl")
            .args(["x509", "-req", "-days", "30", "-CAcreateserial"])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(p("ca.pem"))
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("server.ext"))
            .arg("-out")
            .arg(p("server.pem")),
    )?;
    Ok((p("ca.pem"), p("server.pem"), p("server.key")))
}
