//! The `csal` binary end to end: every command, bad input and the
//! documented exit codes (docs/cli.md), against a SQLite catalog and a
//! local_fs module in a temp dir.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;
use serde_json::Value;

const OK: i32 = 0;
const USAGE: i32 = 2;
const PERMANENT: i32 = 4;
const UNHEALTHY: i32 = 6;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { dir: tempfile::tempdir().unwrap() }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn csal(&self) -> Command {
        let mut c = Command::cargo_bin("csal").unwrap();
        c.current_dir(self.dir.path())
            .env_remove("CSAL_MASTER_KEY")
            .env_remove("RUST_LOG")
            .env("CSAL_CATALOG", self.path("csal.db"));
        c
    }
    /// Run, expect `code`, return (stdout, stderr).
    fn run(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.csal().args(args).output().unwrap();
        let (stdout, stderr) =
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(out.status.code(), Some(code), "csal {args:?}\nstdout: {stdout}\nstderr: {stderr}");
        (stdout, stderr)
    }
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (out, _) = self.run(&all, OK);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} gave non-JSON {out:?}: {e}"))
    }
    /// `--json` output of one object per line (NDJSON, as `ls` prints).
    fn ndjson(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (out, _) = self.run(&all, OK);
        out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: line {l:?}: {e}"))).collect()
    }
    /// A `local` local_fs module under the temp dir.
    fn with_local(&self) -> &Self {
        let cfg = format!(r#"{{"root": "{}"}}"#, self.path("data").display());
        self.run(&["module", "add", "local", "--provider", "local_fs", "--config", &cfg], OK);
        self
    }
}

/// The error line: one line, starts with `csal: error:`.
fn assert_one_line_error(stderr: &str, needle: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got {stderr:?}");
    assert!(lines[0].starts_with("csal: error: "), "{stderr:?}");
    assert!(lines[0].contains(needle), "{stderr:?} should mention {needle:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}

#[test]
fn providers_lists_types_with_fields_and_marks_secrets() {
    let env = Env::new();
    let (out, _) = env.run(&["providers"], OK);
    assert!(out.contains("local_fs") && out.contains("root"), "{out}");
    let v = env.json(&["providers"]);
    let local = v.as_array().unwrap().iter().find(|p| p["provider_type"] == "local_fs").expect("local_fs listed");
    let root = local["fields"].as_array().unwrap().iter().find(|f| f["key"] == "root").unwrap();
    assert_eq!(root["required"], true);
    let db = v.as_array().unwrap().iter().find(|p| p["provider_type"] == "db").expect("db listed");
    let pw = db["fields"].as_array().unwrap().iter().find(|f| f["key"] == "password").unwrap();
    assert_eq!(pw["secret"], true);
}

#[test]
fn module_add_list_show_edit_enable_disable_rm() {
    let env = Env::new();
    env.with_local();
    let list = env.json(&["module", "list"]);
    assert_eq!(list[0]["name"], "local");
    assert_eq!(list[0]["status"], "loaded");
    let (out, _) = env.run(&["module", "list"], OK);
    assert!(out.contains("local") && out.contains("local_fs"), "{out}");

    env.run(&["module", "edit", "local", "--label", "Disk"], OK);
    assert_eq!(env.json(&["module", "show", "local"])["label"], "Disk");
    let new_root = env.path("data2");
    env.run(&["module", "edit", "local", "--config", &format!(r#"{{"root": "{}"}}"#, new_root.display())], OK);
    assert_eq!(env.json(&["module", "show", "local"])["config"]["root"], new_root.display().to_string());

    env.run(&["module", "disable", "local"], OK);
    let shown = env.json(&["module", "show", "local"]);
    assert_eq!((shown["is_enabled"].as_bool(), shown["status"].as_str()), (Some(false), Some("disabled")));
    // A disabled module takes no data and fails its test.
    std::fs::write(env.path("small.txt"), b"hello").unwrap();
    let (_, err) = env.run(&["put", "local", "small.txt"], PERMANENT);
    assert_one_line_error(&err, "disabled");
    env.run(&["module", "test", "local"], PERMANENT);

    env.run(&["module", "enable", "local"], OK);
    let (out, _) = env.run(&["module", "test", "local"], OK);
    assert!(out.contains("ok"), "{out}");
    assert_eq!(env.json(&["module", "test", "local"])["status"], "ok");

    env.run(&["module", "rm", "local"], OK);
    let (_, err) = env.run(&["module", "show", "local"], PERMANENT);
    assert_one_line_error(&err, "local");
}

#[test]
fn seed_style_names_and_policies_with_a_default() {
    let env = Env::new();
    let root = env.path("archive");
    std::fs::create_dir_all(&root).unwrap();
    let cfg = format!(r#"{{"root": "{}"}}"#, root.display());
    env.run(&["module", "add", "mycloud:archive", "--provider", "local_fs", "--config", &cfg], OK);
    assert_eq!(env.json(&["module", "show", "mycloud:archive"])["name"], "mycloud:archive");
    let (_, err) = env.run(&["policy", "show", "cam1"], PERMANENT);
    assert_one_line_error(&err, "no default policy");
    env.run(
        &[
            "policy",
            "set",
            "*",
            "--target",
            "mycloud:archive",
            "--retention-days",
            "30",
            "--keep-days",
            "mycloud:archive=7",
        ],
        OK,
    );
    let shown = env.json(&["policy", "show", "cam1"]);
    assert_eq!(shown["applies_from"], "*");
    assert_eq!(shown["policy"]["keep_days"]["mycloud:archive"], 7);
    let (out, _) = env.run(&["policy", "show", "cam1"], OK);
    assert!(out.contains("the default") && out.contains("30 days"), "{out}");
    env.run(&["policy", "set", "cam1", "--target", "mycloud:archive", "--copies", "1"], OK);
    assert_eq!(env.json(&["policy", "show", "cam1"])["applies_from"], "cam1");
    assert_eq!(env.json(&["policy", "list"]).as_array().unwrap().len(), 2);
    env.run(&["policy", "rm", "cam1"], OK);
    assert_eq!(env.json(&["policy", "show", "cam1"])["applies_from"], "*");
    // Upload limits: per module and node-wide, shown, cleared; bad ones refused.
    env.run(&["bwlimit", "mycloud:archive", "08:00,1MiB/s 19:00,off"], OK);
    env.run(&["bwlimit", "*", "8MiB/s"], OK);
    let limits = env.json(&["bwlimit"]);
    assert_eq!(limits[0]["limit"], "8MiB/s");
    assert_eq!(limits[1]["limit"], "08:00,1MiB/s 19:00,off");
    env.run(&["bwlimit", "mycloud:archive", "off"], OK);
    assert!(env.json(&["bwlimit", "mycloud:archive"])[0]["limit"].is_null());
    env.run(&["bwlimit", "mycloud:archive", "warp"], USAGE);
    env.run(&["bwlimit", "nope", "1MiB/s"], PERMANENT);
    // Bad input: an unknown target, copies beyond the targets, a bad TARGET=DAYS.
    let (_, err) = env.run(&["policy", "set", "cam2", "--target", "nope"], USAGE);
    assert_one_line_error(&err, "nope");
    env.run(&["policy", "set", "cam2", "--target", "mycloud:archive", "--copies", "2"], USAGE);
    env.run(&["policy", "set", "cam2", "--target", "mycloud:archive", "--keep-days", "seven"], USAGE);
    // Tiering: FROM>TO@DAYS, to an existing module; shown; bad rules refused.
    env.run(&["module", "add", "cold", "--provider", "local_fs", "--config", &cfg], OK);
    env.run(&["policy", "set", "cam3", "--target", "mycloud:archive", "--tier", "mycloud:archive>cold@30"], OK);
    let tier = &env.json(&["policy", "show", "cam3"])["policy"]["tiers"][0];
    assert_eq!(
        (tier["from"].as_str(), tier["to"].as_str(), tier["after_days"].as_u64()),
        (Some("mycloud:archive"), Some("cold"), Some(30))
    );
    let (out, _) = env.run(&["retention", "run", "--dry-run"], OK);
    assert!(!out.contains("would move"), "nothing recorded, nothing to move: {out}");
    env.run(&["policy", "set", "cam3", "--target", "mycloud:archive", "--tier", "mycloud:archive>cold"], USAGE);
    let (_, err) =
        env.run(&["policy", "set", "cam3", "--target", "mycloud:archive", "--tier", "cold>mycloud:archive@3"], USAGE);
    assert_one_line_error(&err, "tier rule");
}

#[test]
fn logs_in_a_file_carry_no_colour_codes_and_json_logs_are_one_object_per_line() {
    let env = Env::new();
    env.with_local();
    let logs = |extra: &[&str]| {
        let out = env.csal().env("RUST_LOG", "debug").args(extra).args(["module", "list"]).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let text = logs(&[]);
    assert!(text.lines().count() > 3, "debug logs expected: {text}");
    assert!(!text.contains('\u{1b}'), "escape codes in piped logs: {text:?}");
    let json = logs(&["--log-format", "json"]);
    for line in json.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{v}");
    }
    env.run(&["--log-format", "xml", "module", "list"], USAGE);
}

#[test]
fn module_test_exits_non_zero_when_degraded() {
    let env = Env::new();
    let cfg = format!(r#"{{"root": "{}", "min_free_mb": 999999999999}}"#, env.path("d").display());
    env.run(&["module", "add", "tight", "--provider", "local_fs", "--config", &cfg], OK);
    let (out, err) = env.run(&["module", "test", "tight"], UNHEALTHY);
    assert!(out.contains("degraded"), "{out}");
    assert_one_line_error(&err, "degraded");
}

#[test]
fn config_from_file_and_secrets_are_masked_in_show_and_list() {
    let env = Env::new();
    let cfg_path = env.path("db.json");
    let db_url = format!("sqlite://{}", env.path("objects.db").display());
    std::fs::write(&cfg_path, format!(r#"{{"url": "{db_url}", "password": "TopSecretPw123"}}"#)).unwrap();
    env.run(&["module", "add", "dbm", "--provider", "db", "--config", &format!("@{}", cfg_path.display())], OK);
    for args in [
        &["module", "show", "dbm"][..],
        &["module", "list"],
        &["--json", "module", "show", "dbm"],
        &["--json", "module", "list"],
    ] {
        let (out, err) = env.run(args, OK);
        assert!(
            !out.contains("TopSecretPw123") && !err.contains("TopSecretPw123"),
            "{args:?} leaked the secret: {out}"
        );
    }
    assert_eq!(env.json(&["module", "show", "dbm"])["config"]["password"], "********");
    // Editing without the secret keeps it (the module still loads).
    env.run(&["module", "edit", "dbm", "--config", &format!(r#"{{"url": "{db_url}"}}"#)], OK);
    assert_eq!(env.json(&["module", "show", "dbm"])["config"]["password"], "********");
}

#[test]
fn bad_input_gives_one_clear_line_and_the_documented_exit_code() {
    let env = Env::new();
    env.with_local();
    std::fs::write(env.path("f.txt"), b"x").unwrap();

    // Unknown module: not found (4).
    for args in [
        &["put", "nope", "f.txt"][..],
        &["get", "nope", "x"],
        &["ls", "nope"],
        &["stat", "nope", "x"],
        &["rm", "nope", "x"],
        &["module", "show", "nope"],
        &["module", "test", "nope"],
        &["module", "enable", "nope"],
        &["module", "rm", "nope"],
    ] {
        let (_, err) = env.run(args, PERMANENT);
        assert_one_line_error(&err, "nope");
    }
    // Malformed JSON config, unknown provider, missing/unknown fields, bad names: usage (2).
    let (_, err) = env.run(&["module", "add", "m", "--provider", "local_fs", "--config", "{not json"], USAGE);
    assert_one_line_error(&err, "not valid JSON");
    let (_, err) = env.run(&["module", "add", "m", "--provider", "local_fs", "--config", "[1]"], USAGE);
    assert_one_line_error(&err, "JSON object");
    let (_, err) = env.run(&["module", "add", "m", "--provider", "warp_drive", "--config", "{}"], USAGE);
    assert_one_line_error(&err, "warp_drive");
    let (_, err) = env.run(&["module", "add", "m", "--provider", "local_fs", "--config", "{}"], USAGE);
    assert_one_line_error(&err, "'root'");
    let (_, err) = env.run(
        &["module", "add", "m", "--provider", "local_fs", "--config", r#"{"root": "/tmp/x", "colour": 1}"#],
        USAGE,
    );
    assert_one_line_error(&err, "'colour'");
    let (_, err) = env.run(&["module", "add", "m", "--provider", "local_fs", "--config", "@/no/such/file.json"], USAGE);
    assert_one_line_error(&err, "/no/such/file.json");
    let (_, err) = env.run(&["module", "add", "../evil", "--provider", "memory"], USAGE);
    assert_one_line_error(&err, "name");
    let (_, err) = env.run(&["module", "edit", "local"], USAGE);
    assert_one_line_error(&err, "nothing to change");
    // The same name twice: already exists (4).
    let cfg = format!(r#"{{"root": "{}"}}"#, env.path("data").display());
    env.run(&["module", "add", "local", "--provider", "local_fs", "--config", &cfg], PERMANENT);

    // Traversal-looking and hostile object ids: invalid input (2), nothing read.
    for id in ["../../etc/passwd", "/etc/passwd", "a/../../b", "a\\..\\b"] {
        for cmd in ["get", "stat", "rm"] {
            let (out, err) = env.run(&[cmd, "local", id], USAGE);
            assert!(!out.contains("root:"), "{cmd} {id} printed {out}");
            assert_one_line_error(&err, "object id");
        }
    }
    // Bad ranges, missing files, bad flags.
    let id = env.run(&["put", "local", "f.txt"], OK).0.trim().to_owned();
    let (_, err) = env.run(&["get", "local", &id, "--range", "x-1"], USAGE);
    assert_one_line_error(&err, "range");
    let (_, err) = env.run(&["get", "local", &id, "--range", "5-"], USAGE);
    assert_one_line_error(&err, "range");
    let (_, err) = env.run(&["put", "local", "missing.bin"], USAGE);
    assert_one_line_error(&err, "missing.bin");
    env.run(&["get", "local", "no-such-object.bin"], PERMANENT);
    env.run(&["frobnicate"], USAGE);
    env.run(&["module", "add", "m"], USAGE);
}

#[test]
fn json_errors_are_one_json_object_with_kind_and_exit_code() {
    let env = Env::new();
    let out = env.csal().args(["--json", "get", "nope", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(PERMANENT));
    let v: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(v["error"]["kind"], "not_found");
    assert_eq!(v["error"]["exit_code"], PERMANENT);
}

#[test]
fn data_commands_put_get_ls_stat_rm_url() {
    let env = Env::new();
    env.with_local();
    std::fs::write(env.path("clip.mp4"), b"0123456789abcdef").unwrap();
    let receipt = env.json(&["put", "local", "clip.mp4", "--key-hint", "cam1/seg.mp4"]);
    let id = receipt["object_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cam1/seg-") && id.ends_with(".mp4"), "{id}");
    assert_eq!(receipt["size"], 16);

    // stdin put, stdout get, ranges.
    let out = env
        .csal()
        .args(["put", "local", "-", "--key-hint", "cam1/piped.bin"])
        .write_stdin("piped bytes")
        .output()
        .unwrap();
    assert!(out.status.success());
    let piped = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(env.run(&["get", "local", &piped], OK).0, "piped bytes");
    assert_eq!(env.run(&["get", "local", &id, "--range", "2-5"], OK).0, "2345");
    assert_eq!(env.run(&["get", "local", &id, "--range", "-3"], OK).0, "def");
    assert_eq!(env.run(&["get", "local", &id, "--range", "14-99"], OK).0, "ef");
    env.run(&["get", "local", &id, "--range", "16-20"], USAGE);

    let (out, _) = env.run(&["ls", "local"], OK);
    assert!(out.contains(&id) && out.contains(&piped), "{out}");
    let listed = env.ndjson(&["ls", "local", "cam1", "--prefix", "seg"]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["object_id"], id.as_str());
    assert_eq!(env.ndjson(&["ls", "local", "other"]).len(), 0);
    // -q and --no-progress change stderr only.
    assert_eq!(env.run(&["-q", "get", "local", &id], OK), ("0123456789abcdef".to_owned(), String::new()));
    assert_eq!(env.run(&["--no-progress", "get", "local", &id], OK).0, "0123456789abcdef");

    assert_eq!(env.json(&["stat", "local", &id])["size"], 16);
    let (out, _) = env.run(&["stat", "local", &id], OK);
    assert!(out.contains("16"), "{out}");

    // local_fs cannot presign: a clear "not supported" (4).
    let (_, err) = env.run(&["url", "local", &id, "--expires", "60"], PERMANENT);
    assert_one_line_error(&err, "not supported");

    env.run(&["rm", "local", &id], OK);
    env.run(&["rm", "local", &id], OK); // idempotent
    env.run(&["stat", "local", &id], PERMANENT);
}

/// Deterministic pseudo-random bytes, written in chunks (never whole in memory).
fn write_random_file(path: &Path, size: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

fn files_equal(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (std::fs::File::open(a).unwrap(), std::fs::File::open(b).unwrap());
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

#[test]
fn put_then_get_of_a_100_mib_file_gives_identical_bytes() {
    let env = Env::new();
    env.with_local();
    let src = env.path("big.bin");
    write_random_file(&src, 100 << 20);
    let (out, err) = env.run(&["put", "local", "big.bin"], OK);
    // stderr is not a terminal here: no progress bar output.
    assert!(err.is_empty(), "{err}");
    let id = out.trim();
    env.run(&["get", "local", id, "-o", "copy.bin"], OK);
    assert!(files_equal(&src, &env.path("copy.bin")));
    assert!(!env.path("copy.bin.csal-part").exists());
}

#[test]
fn admin_password_and_api_tokens() {
    let env = Env::new();
    let out = env.csal().args(["admin", "set-password"]).write_stdin("short\n").output().unwrap();
    assert_eq!(out.status.code(), Some(USAGE));
    let out = env.csal().args(["admin", "set-password"]).write_stdin("correct horse battery\n").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (token, _) = env.run(&["admin", "create-token", "ci", "--scope", "admin"], OK);
    assert!(token.trim().starts_with("csal_") && token.trim().len() > 30, "{token}");
    env.run(&["admin", "create-token", "ci", "--scope", "read"], PERMANENT);
    let (list, _) = env.run(&["admin", "tokens"], OK);
    assert!(list.contains("ci") && !list.contains(token.trim()), "{list}");
    env.run(&["admin", "revoke-token", "ci"], OK);
    env.run(&["admin", "revoke-token", "ci"], PERMANENT);
}

/// Kills the server on drop (by its own pid).
struct Server(std::process::Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_first_run_creates_local_module_and_prints_url_and_password() {
    let env = Env::new();
    let bin = assert_cmd::cargo::cargo_bin("csal");
    let mut child = std::process::Command::new(bin)
        .current_dir(env.dir.path())
        .env("CSAL_CATALOG", env.path("csal.db"))
        .env_remove("CSAL_MASTER_KEY")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("change it any time");
        banner.push(line);
        if done {
            break;
        }
    }
    let text = banner.join("\n");
    assert!(text.contains("created module 'local'"), "{text}");
    // The password goes to a 0600 file beside the key, never to stdout.
    let file = env.path("csal.admin-password");
    assert!(text.contains(&format!("written to {}", file.display())), "{text}");
    let password = std::fs::read_to_string(&file).unwrap();
    assert!(password.trim().len() >= 16, "{password:?}");
    assert!(!text.contains(password.trim()), "the password was printed: {text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let url = banner[0].strip_prefix("CSAL admin: http://").unwrap().trim_end_matches('/').to_owned();
    assert!(url.starts_with("127.0.0.1:"), "{url}");
    assert!(http_get(&url, "/healthz").ends_with("ok"));
    let page = http_get(&url, "/modules");
    assert!(page.starts_with("HTTP/1.1 303") && page.contains("location: /login"), "{page}");
    assert!(env.path("csal-data").is_dir());
    drop(server);
    // Second run: no new password, the module is still there.
    let list = env.json(&["module", "list"]);
    assert_eq!(list[0]["name"], "local");
    assert_eq!(list[0]["provider_type"], "local_fs");
}

#[test]
fn a_postgresql_catalog_needs_an_explicit_key_and_its_password_is_never_printed() {
    let env = Env::new();
    let url = "postgres://recorder:hunter2-catalog-pw@127.0.0.1:1/csal";
    // No key given: refused before anything is created in the current folder.
    let out = env.csal().args(["--catalog", url, "module", "list"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(USAGE), "{stderr}");
    assert!(stderr.contains("CSAL_MASTER_KEY") && stderr.contains("--key-file"), "{stderr}");
    assert!(!env.path("csal.key").exists(), "a key file was created in the current folder");
    // With a key: the connection fails, and the error masks the password.
    for args in [vec!["--catalog", url, "module", "list"], vec!["--json", "--catalog", url, "module", "list"]] {
        let out = env
            .csal()
            .env("CSAL_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .args(&args)
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_ne!(out.status.code(), Some(OK));
        assert!(!stderr.contains("hunter2") && !stdout.contains("hunter2"), "{stderr}{stdout}");
        assert!(stderr.contains("recorder:********@127.0.0.1:1"), "{stderr}");
    }
}

/// Packagers install these: a completion script per shell that knows the
/// subcommands, and a roff manual page; neither touches the catalog.
#[test]
fn completions_and_man_page_print_without_a_catalog() {
    let env = Env::new();
    let (bash, _) = env.run(&["completions", "bash"], OK);
    assert!(bash.contains("_csal()") && bash.contains("retention"), "{bash}");
    let (zsh, _) = env.run(&["completions", "zsh"], OK);
    assert!(zsh.starts_with("#compdef csal"), "{zsh}");
    let (man, _) = env.run(&["man"], OK);
    assert!(man.contains(".TH csal") && man.contains("completions"), "{man}");
    let (_, err) = env.run(&["completions", "tcsh"], USAGE);
    assert!(err.contains("tcsh"), "{err}");
    assert!(!env.path("csal.db").exists(), "no catalog is created for these");
}

/// Under `--json` a usage error is one JSON object on stderr, like every
/// other failure; help still prints as text.
#[test]
fn usage_errors_are_json_under_json() {
    let env = Env::new();
    let (_, err) = env.run(&["--json", "put"], USAGE);
    let v: Value = serde_json::from_str(err.trim()).unwrap_or_else(|e| panic!("not JSON: {err:?}: {e}"));
    assert_eq!(v["error"]["exit_code"], USAGE);
    assert_eq!(v["error"]["kind"], "invalid_input");
    assert!(v["error"]["message"].as_str().unwrap().contains("required"), "{v}");
    let (_, err) = env.run(&["--json", "no-such-command"], USAGE);
    assert!(serde_json::from_str::<Value>(err.trim()).is_ok(), "{err}");
    let (_, err) = env.run(&["put"], USAGE);
    assert!(err.contains("Usage"), "{err}");
    let (out, _) = env.run(&["--json", "--help"], OK);
    assert!(out.contains("Usage"), "{out}");
}
