//! wsgidav: a WebDAV server in Python (PyPI `wsgidav` + `cheroot`), basic auth
//! test/test. Besides the root share it mounts two folders at Nextcloud's
//! path scheme (`/remote.php/dav/files/test`, `/remote.php/dav/uploads/test`)
//! so the `nextcloud` preset can run against it.

use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::{Emulator, Env, Process, Running, pip_venv, wait_http};

const PORT: u16 = 8081;
const PACKAGES: &[&str] = &["wsgidav==4.4.0", "cheroot"];

pub struct Wsgidav;

impl Emulator for Wsgidav {
    fn name(&self) -> &'static str {
        "wsgidav"
    }
    fn ports(&self) -> &'static [u16] {
        &[PORT]
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-webdav"]
    }
    fn install(&self, env: &Env) -> Result<()> {
        pip_venv(&env.cache, "wsgidav", PACKAGES).map(|_| ())
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let venv = pip_venv(&env.cache, "wsgidav", PACKAGES)?;
        let data = env.data_dir("wsgidav")?;
        let (root, files, uploads) = (data.join("root"), data.join("nc-files"), data.join("nc-uploads"));
        for d in [&root, &files, &uploads] {
            std::fs::create_dir_all(d)?;
        }
        let config = data.join("wsgidav.yaml");
        std::fs::write(
            &config,
            format!(
                "host: 127.0.0.1\nport: {PORT}\n\
                 provider_mapping:\n  \"/\": \"{}\"\n  \"/remote.php/dav/files/test\": \"{}\"\n  \"/remote.php/dav/uploads/test\": \"{}\"\n\
                 http_authenticator: {{accept_basic: true, accept_digest: false, default_to_digest: false}}\n\
                 simple_dc: {{user_mapping: {{\"*\": {{\"test\": {{password: \"test\"}}}}}}}}\n\
                 property_manager: true\nlock_storage: true\nverbose: 1\n",
                root.display(),
                files.display(),
                uploads.display()
            ),
        )?;
        let log = env.log_path("wsgidav");
        let mut p = Process::spawn("wsgidav", Command::new(venv.join("bin/wsgidav")).arg("-c").arg(&config), &log)?;
        if let Err(e) = wait_http(PORT, "/", Duration::from_secs(30)) {
            p.check_alive(&log)?;
            p.stop();
            return Err(e);
        }
        let url = format!("http://127.0.0.1:{PORT}/");
        Ok(Running {
            name: self.name(),
            env: vec![
                ("CSAL_TEST_WEBDAV_WSGIDAV_URL".into(), url.clone()),
                ("CSAL_TEST_WEBDAV_WSGIDAV_USER".into(), "test".into()),
                ("CSAL_TEST_WEBDAV_WSGIDAV_PASSWORD".into(), "test".into()),
                // Nextcloud's layout on the same server: the preset builds
                // /remote.php/dav/files/<user>/ from this base URL.
                ("CSAL_TEST_NEXTCLOUD_URL".into(), format!("http://127.0.0.1:{PORT}")),
            ],
            processes: vec![p],
        })
    }
}
