//! OpenStack Swift all-in-one (PyPI `swift` + Debian `memcached`): rings with
//! one device, account/container/object servers and a proxy on 127.0.0.1:8090
//! with TempAuth (`test:tester` / `testing`), SLO, temp URLs and s3api (for
//! the S3 provider: access key `test:tester`, secret `testing`, path style).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use super::{Emulator, Env, Process, Running, apt_install, pip_venv, run_checked, wait_http, wait_port};

const PROXY_PORT: u16 = 8090;
const MEMCACHED_PORT: u16 = 11211;
const PACKAGES: &[&str] = &["swift==2.38.3"];
const SERVERS: [(&str, u16); 3] = [("object", 6210), ("container", 6211), ("account", 6212)];

pub struct Swift;

const RING_SCRIPT: &str = r#"
import sys
from swift.common.ring import RingBuilder
d, n, p = sys.argv[1:]
b = RingBuilder(2, 1, 1)
b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': int(p), 'device': 'd1', 'weight': 1})
b.rebalance()
b.get_ring().save(f'{d}/{n}.ring.gz')
"#;

fn proxy_conf(dir: &Path) -> String {
    format!(
        r#"[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {PROXY_PORT}
workers = 0
swift_dir = {d}
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl s3api tempauth copy container-quotas account-quotas slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_quota_tester = testing .admin
user_reseller_admin = reseller .reseller_admin
[filter:s3api]
use = egg:swift#s3api
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{MEMCACHED_PORT}
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:copy]
use = egg:swift#copy
[filter:container-quotas]
use = egg:swift#container_quotas
[filter:account-quotas]
use = egg:swift#account_quotas
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
"#,
        d = dir.display()
    )
}

impl Emulator for Swift {
    fn name(&self) -> &'static str {
        "swift"
    }
    fn ports(&self) -> &'static [u16] {
        &[PROXY_PORT, MEMCACHED_PORT]
    }
    fn crates(&self) -> &'static [&'static str] {
        &["csal-swift", "csal-s3"]
    }
    fn install(&self, env: &Env) -> Result<()> {
        apt_install(&["memcached"])?;
        pip_venv(&env.cache, "swift", PACKAGES).map(|_| ())
    }
    fn start(&self, env: &Env) -> Result<Running> {
        let venv = pip_venv(&env.cache, "swift", PACKAGES)?;
        let bin = venv.join("bin");
        let dir = env.data_dir("swift")?;
        std::fs::create_dir_all(dir.join("srv/d1"))?;
        std::fs::write(
            dir.join("swift.conf"),
            "[swift-hash]\nswift_hash_path_suffix = ci\nswift_hash_path_prefix = ci\n\
             [storage-policy:0]\nname = Policy-0\ndefault = yes\n",
        )?;
        for (name, port) in SERVERS {
            run_checked(
                &format!("swift {name} ring"),
                Command::new(bin.join("python")).args(["-c", RING_SCRIPT]).arg(&dir).arg(name).arg(port.to_string()),
            )?;
            std::fs::write(
                dir.join(format!("{name}-server.conf")),
                format!(
                    "[DEFAULT]\ndevices = {d}/srv\nmount_check = false\ndisable_fallocate = true\nbind_ip = 127.0.0.1\n\
                     bind_port = {port}\nworkers = 0\nswift_dir = {d}\nlog_level = WARNING\n\
                     [pipeline:main]\npipeline = {name}-server\n[app:{name}-server]\nuse = egg:swift#{name}\n",
                    d = dir.display()
                ),
            )?;
        }
        std::fs::write(dir.join("proxy-server.conf"), proxy_conf(&dir))?;
        let mut processes = Vec::new();
        let memcached_log = env.log_path("swift-memcached");
        processes.push(Process::spawn(
            "memcached",
            Command::new("memcached")
                .args(["-l", "127.0.0.1", "-p", &MEMCACHED_PORT.to_string()])
                .args(["-U", "0", "-u", "nobody", "-m", "64"]),
            &memcached_log,
        )?);
        // `Running` stops every process on drop, also on the error paths below.
        let mut running = Running { name: self.name(), env: Vec::new(), processes };
        wait_port(MEMCACHED_PORT, Duration::from_secs(10))?;
        for name in ["object", "container", "account", "proxy"] {
            let log = env.log_path(&format!("swift-{name}"));
            let p = Process::spawn(
                &format!("swift-{name}"),
                Command::new(bin.join(format!("swift-{name}-server"))).arg(dir.join(format!("{name}-server.conf"))),
                &log,
            )?;
            running.processes.push(p);
        }
        let ready = wait_http(PROXY_PORT, "/healthcheck", Duration::from_secs(60));
        if let Err(e) = ready {
            let proxy_log = env.log_path("swift-proxy");
            if let Some(p) = running.processes.last_mut() {
                p.check_alive(&proxy_log)?;
            }
            return Err(e);
        }
        for (_, port) in SERVERS {
            wait_port(port, Duration::from_secs(30))?;
        }
        let base = format!("http://127.0.0.1:{PROXY_PORT}");
        running.env = vec![
            ("CSAL_TEST_SWIFT_AUTH_URL".into(), format!("{base}/auth/v1.0")),
            ("CSAL_TEST_SWIFT_USER".into(), "test:tester".into()),
            ("CSAL_TEST_SWIFT_KEY".into(), "testing".into()),
            // An account of its own for quota tests (an account quota would
            // hit every other test on test:tester), and a reseller admin,
            // the only user account_quotas lets set one.
            ("CSAL_TEST_SWIFT_QUOTA_USER".into(), "quota:tester".into()),
            ("CSAL_TEST_SWIFT_RESELLER_USER".into(), "reseller:admin".into()),
            ("CSAL_TEST_SWIFT_RESELLER_KEY".into(), "reseller".into()),
            ("CSAL_TEST_SWIFT_S3_ENDPOINT".into(), base),
            ("CSAL_TEST_SWIFT_S3_ACCESS_KEY".into(), "test:tester".into()),
            ("CSAL_TEST_SWIFT_S3_SECRET_KEY".into(), "testing".into()),
        ];
        Ok(running)
    }
}
