//! moto: an in-memory S3 (no signature checks). From PyPI `moto[server]`.

use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::{Emulator, Env, Process, Running, pip_venv, wait_http};

const PORT: u16 = 5000;

pub struct Moto;

impl Emulator for Moto {
    fn name(&self) -> &'static str {
        "moto"
    }
    fn ports(&self) -> &'static [u16] {
        &[PORT]
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-s3"]
    }
    fn install(&self, env: &Env) -> Result<()> {
        pip_venv(&env.cache, "moto", &["moto[server]==5.2.5"]).map(|_| ())
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let venv = pip_venv(&env.cache, "moto", &["moto[server]==5.2.5"])?;
        let log = env.log_path("moto");
        let mut p = Process::spawn(
            "moto",
            Command::new(venv.join("bin/moto_server")).args(["-H", "127.0.0.1", "-p", &PORT.to_string()]),
            &log,
        )?;
        let ready = wait_http(PORT, "/moto-api/", Duration::from_secs(60));
        if let Err(e) = ready {
            p.check_alive(&log)?;
            p.stop();
            return Err(e);
        }
        Ok(Running {
            name: self.name(),
            env: vec![("CSAL_TEST_S3_MOTO_ENDPOINT".into(), format!("http://127.0.0.1:{PORT}"))],
            processes: vec![p],
        })
    }
}
