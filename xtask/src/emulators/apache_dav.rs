//! Apache httpd with mod_dav (Debian `apache2`): basic auth test/test at `/`,
//! and digest auth test/test at `/digest/` (realm `dav`), so both auth
//! schemes of the `webdav` provider meet a real server.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{Emulator, Env, Process, Running, apt_install, run_checked, wait_http};

const PORT: u16 = 8083;

pub struct ApacheDav;

impl Emulator for ApacheDav {
    fn name(&self) -> &'static str {
        "apache_dav"
    }
    fn ports(&self) -> &'static [u16] {
        &[PORT]
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-webdav"]
    }
    fn install(&self, _env: &Env) -> Result<()> {
        apt_install(&["apache2"])
    }
    fn start(&self, env: &Env) -> Result<Running> {
        // The server drops to www-data, which must reach its data: keep it
        // under the system temp dir (world-traversable) rather than opening
        // up the parents of the workspace. Wiped at every start.
        let dir = std::env::temp_dir().join("csal-emulator-apache-dav");
        let _ = std::fs::remove_dir_all(&dir);
        let (data, digest_data) = (dir.join("dav"), dir.join("dav-digest"));
        std::fs::create_dir_all(&data)?;
        std::fs::create_dir_all(&digest_data)?;
        run_checked("chown www-data", Command::new("chown").arg("-R").arg("www-data:").arg(&dir))?;
        let htpasswd = dir.join("htpasswd");
        run_checked("htpasswd", Command::new("htpasswd").arg("-bc").arg(&htpasswd).args(["test", "test"]))?;
        // htdigest only prompts; its line is user:realm:md5(user:realm:password).
        let md5 = Command::new("sh").args(["-c", "printf %s test:dav:test | md5sum"]).output().context("md5sum")?;
        let hash = String::from_utf8_lossy(&md5.stdout).split_whitespace().next().unwrap_or_default().to_owned();
        let htdigest = dir.join("htdigest");
        std::fs::write(&htdigest, format!("test:dav:{hash}\n"))?;
        let m = "/usr/lib/apache2/modules";
        let conf = dir.join("httpd.conf");
        let d = dir.display();
        std::fs::write(
            &conf,
            format!(
                r#"ServerRoot /etc/apache2
ServerName 127.0.0.1
Listen 127.0.0.1:{PORT}
PidFile {d}/httpd.pid
Mutex file:{d}
ErrorLog {d}/error.log
User www-data
Group www-data
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule authz_user_module {m}/mod_authz_user.so
LoadModule authn_core_module {m}/mod_authn_core.so
LoadModule authn_file_module {m}/mod_authn_file.so
LoadModule auth_basic_module {m}/mod_auth_basic.so
LoadModule auth_digest_module {m}/mod_auth_digest.so
LoadModule alias_module {m}/mod_alias.so
LoadModule mime_module {m}/mod_mime.so
LoadModule dav_module {m}/mod_dav.so
LoadModule dav_fs_module {m}/mod_dav_fs.so
TypesConfig /etc/mime.types
DavLockDB {d}/davlock
DocumentRoot {data}
<Directory {data}>
  Dav On
  AuthType Basic
  AuthName dav
  AuthUserFile {htpasswd}
  Require valid-user
</Directory>
Alias /digest {digest_data}
<Directory {digest_data}>
  Dav On
  AuthType Digest
  AuthName dav
  AuthDigestDomain /digest/
  AuthUserFile {htdigest}
  Require valid-user
</Directory>
"#,
                data = data.display(),
                digest_data = digest_data.display(),
                htpasswd = htpasswd.display(),
                htdigest = htdigest.display(),
            ),
        )?;
        let log = env.log_path("apache_dav");
        let mut p = Process::spawn("apache2", Command::new("apache2").arg("-f").arg(&conf).arg("-DFOREGROUND"), &log)?;
        if let Err(e) = wait_http(PORT, "/", Duration::from_secs(20)) {
            p.check_alive(&log)?;
            p.stop();
            return Err(e);
        }
        let base = format!("http://127.0.0.1:{PORT}");
        Ok(Running {
            name: self.name(),
            env: vec![
                ("CSAL_TEST_WEBDAV_APACHE_URL".into(), format!("{base}/")),
                ("CSAL_TEST_WEBDAV_APACHE_USER".into(), "test".into()),
                ("CSAL_TEST_WEBDAV_APACHE_PASSWORD".into(), "test".into()),
                ("CSAL_TEST_WEBDAV_APACHE_DIGEST_URL".into(), format!("{base}/digest/")),
                // The served folder (Basic auth), for tests that plant files directly.
                ("CSAL_TEST_WEBDAV_APACHE_ROOT".into(), data.display().to_string()),
            ],
            processes: vec![p],
        })
    }
}
