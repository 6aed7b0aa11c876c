//! The shared conformance suite and the SFTP-specific behaviour, on a real
//! OpenSSH sshd started by `cargo xtask` (see xtask/src/emulators/sshd.rs).

csal_core::link_providers!(csal_sftp);

use csal_testkit::tcp as common;

use std::net::SocketAddr;

use csal_conformance::{Target, require_env};
use csal_core::{ByteStream, ErrorKind, InstanceDefinition, ListRequest, StorageModule, StorageRouter, WriteMeta};
use serde_json::{Value, json};

struct Server {
    host: String,
    port: u16,
    user: String,
    password: String,
    key_file: String,
    host_key: String,
    home: String,
}

fn server(label: &str) -> Option<Server> {
    let host = require_env("CSAL_TEST_SFTP_HOST", label, "sftp")?;
    Some(Server {
        host,
        port: require_env("CSAL_TEST_SFTP_PORT", label, "sftp")?.parse().expect("port"),
        user: require_env("CSAL_TEST_SFTP_USER", label, "sftp")?,
        password: require_env("CSAL_TEST_SFTP_PASSWORD", label, "sftp")?,
        key_file: require_env("CSAL_TEST_SFTP_KEY_FILE", label, "sftp")?,
        host_key: require_env("CSAL_TEST_SFTP_HOST_KEY", label, "sftp")?,
        home: std::env::var("CSAL_TEST_SFTP_HOME").unwrap_or_default(),
    })
}

fn password_config(s: &Server, base_dir: &str) -> Value {
    json!({
        "host": s.host, "port": s.port, "username": s.user, "password": s.password,
        "host_key": s.host_key, "base_dir": base_dir,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sftp_password_login_passes_conformance() {
    let label = "sftp@openssh-password";
    let Some(s) = server(label) else { return };
    let mut bad = password_config(&s, "csal-conformance");
    bad["password"] = json!("wrong-password-for-test");
    let target =
        Target::new(label, "sftp", password_config(&s, "csal-conformance")).list_objects(1100).bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sftp_key_login_passes_conformance() {
    let label = "sftp@openssh-key";
    let Some(s) = server(label) else { return };
    let key = std::fs::read_to_string(&s.key_file).expect("read client key");
    let config = json!({
        "host": s.host, "port": s.port, "username": s.user, "private_key": key,
        "host_key": s.host_key, "base_dir": "csal-conformance-key",
    });
    let mut bad = config.clone();
    // A valid key the server does not know.
    bad["private_key"] = json!(UNKNOWN_KEY);
    let target = Target::new(label, "sftp", config).list_objects(1000).bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

/// A throwaway ed25519 key that is in no authorized_keys file.
const UNKNOWN_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACCnjVM+NS1u/aExcWgkLQUZBxlWk4UTHIrSaQRWXhy9VwAAAJjs3/zO7N/8
zgAAAAtzc2gtZWQyNTUxOQAAACCnjVM+NS1u/aExcWgkLQUZBxlWk4UTHIrSaQRWXhy9Vw
AAAEAx4ZlkNd89n9y/05L1s8oV1/3L4FCo65cQHCCRSjjvYKeNUz41LW79oTFxaCQtBRkH
GVaThRMcitJpBFZeHL1XAAAAEXVua25vd25AY3NhbC10ZXN0AQIDBA==
-----END OPENSSH PRIVATE KEY-----";

fn router(config: Value) -> StorageRouter {
    StorageRouter::from_definitions(&[InstanceDefinition::new("t", "sftp", config)])
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_host_key_is_refused() {
    let Some(s) = server("sftp-host-key") else { return };
    let mut config = password_config(&s, "csal-hostkey");
    // Another server's key: what a man in the middle or a reinstalled server shows.
    config["host_key"] = json!("SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU");
    let r = router(config);
    let err = r.write("t", ByteStream::from_bytes(&b"secret video"[..]), WriteMeta::new("x.bin")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.to_string().contains("host key"), "{err}");
    let health = r.module("t").unwrap().health_check().await;
    assert_ne!(health.status, csal_core::HealthStatus::Ok);
    // The right key given as a known_hosts line (not a fingerprint) is accepted.
    let host_pub = std::path::Path::new(&s.key_file).with_file_name("host_ed25519.pub");
    if let Ok(line) = std::fs::read_to_string(host_pub) {
        let mut config = password_config(&s, "csal-hostkey");
        config["host_key"] = json!(format!("[{}]:{} {}", s.host, s.port, line.trim()));
        router(config).module("t").unwrap().validate().await.expect("known_hosts line of the real key");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_host_key_pin_is_a_config_error() {
    let Some(s) = server("sftp-no-pin") else { return };
    let mut config = password_config(&s, "csal-nopin");
    config.as_object_mut().unwrap().remove("host_key");
    let r = router(config);
    let err = r.module("t").err().expect("instance must not load without a host key pin");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_connection_mid_write_fails_transient_and_leaves_nothing_visible() {
    let Some(s) = server("sftp-fault") else { return };
    let target: SocketAddr = format!("{}:{}", s.host, s.port).parse().expect("addr");
    let proxy = common::CutProxy::start(target).await;
    let base = format!("csal-fault-{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut config = password_config(&s, &base);
    config["port"] = json!(proxy.port);
    config["operation_timeout_secs"] = json!(20);
    let r = router(config);
    let m = r.module("t").unwrap();
    m.validate().await.expect("validate through the proxy");

    let len = 48 * 1024 * 1024;
    proxy.cut_after(8 * 1024 * 1024);
    let result = m.write(csal_conformance_body(len, 11), WriteMeta::new("cam/seg.bin")).await;
    assert_eq!(proxy.cuts(), 1, "the proxy did not cut the connection");
    eprintln!("write cut mid-transfer gave: {:?}", result.as_ref().map(|r| &r.object_id).map_err(|e| e.to_string()));
    match &result {
        Err(e) => assert!(e.is_transient(), "expected a transient error, got {:?}: {e}", e.kind()),
        Ok(r) => {
            let back = csal_conformance_crc(m.read(&r.object_id, None).await.unwrap()).await;
            assert_eq!(back, csal_conformance_crc(csal_conformance_body(len, 11)).await);
        }
    }
    if result.is_err() {
        let page = m.list(&ListRequest::new("cam")).await.expect("list after reconnect");
        assert!(page.objects.is_empty(), "a failed write is visible: {:?}", page.objects);
        if !s.home.is_empty() {
            let dir = std::path::Path::new(&s.home).join(&base).join("cam");
            let visible: Vec<String> = std::fs::read_dir(&dir)
                .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .filter(|n| !n.starts_with(".csal-tmp-"))
                .collect();
            assert!(visible.is_empty(), "files left on the server: {visible:?}");
        }
    }
    // The module reconnects by itself: the next write works and reads back.
    let data = vec![7u8; 3 * 1024 * 1024 + 5];
    let receipt = m.write(ByteStream::from_bytes(data.clone()), WriteMeta::new("cam/after.bin")).await.unwrap();
    let back = m.read(&receipt.object_id, None).await.unwrap().collect_limited(8 << 20).await.unwrap();
    assert_eq!(back.as_ref(), data.as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn rename_never_replaces_an_existing_file() {
    let Some(s) = server("sftp-no-clobber") else { return };
    if s.home.is_empty() {
        return;
    }
    // Occupy every name a write could pick is impossible (ids are random), so
    // check the server primitive we rely on: SSH_FXP_RENAME onto an existing file fails.
    let base = format!("csal-clobber-{}", ulid::Ulid::new().to_string().to_lowercase());
    let r = router(password_config(&s, &base));
    let m = r.module("t").unwrap();
    let a = m.write(ByteStream::from_bytes(&b"first"[..]), WriteMeta::new("a.bin")).await.unwrap();
    let b = m.write(ByteStream::from_bytes(&b"second"[..]), WriteMeta::new("a.bin")).await.unwrap();
    assert_ne!(a.object_id, b.object_id);
    let dir = std::path::Path::new(&s.home).join(&base);
    std::fs::copy(dir.join(&b.object_id), dir.join(".csal-tmp-manual")).unwrap();
    let renamed = csal_sftp_rename_probe(&s, &base, ".csal-tmp-manual", &a.object_id).await;
    assert!(renamed.is_err(), "rename replaced an existing file");
    let first = m.read(&a.object_id, None).await.unwrap().collect_limited(100).await.unwrap();
    assert_eq!(first.as_ref(), b"first");
}

async fn csal_sftp_rename_probe(s: &Server, base: &str, from: &str, to: &str) -> Result<(), String> {
    csal_sftp::rename_probe(&password_config(s, base), from, to).await.map_err(|e| e.to_string())
}

fn csal_conformance_body(len: usize, seed: u64) -> ByteStream {
    // Generated on the fly in 100 KiB chunks, not replayable: like a camera stream.
    let chunk = 100 * 1024;
    let stream = futures::stream::iter((0..len.div_ceil(chunk)).map(move |i| {
        let n = chunk.min(len - i * chunk);
        Ok(bytes::Bytes::from(vec![(i as u64 ^ seed) as u8; n]))
    }));
    ByteStream::new(stream, None)
}

async fn csal_conformance_crc(mut body: ByteStream) -> (u32, u64) {
    use futures::StreamExt;
    let (mut crc, mut len) = (0u32, 0u64);
    while let Some(c) = body.next().await {
        let c = c.unwrap();
        crc = crc32c::crc32c_append(crc, &c);
        len += c.len() as u64;
    }
    (crc, len)
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_sweep_temp_files_older_than_a_day() {
    let Some(s) = server("sftp-sweep") else { return };
    assert!(!s.home.is_empty(), "CSAL_TEST_SFTP_HOME is needed to plant leftovers");
    let base = format!("csal-sweep-{}", ulid::Ulid::new().to_string().to_lowercase());
    let r = router(password_config(&s, &base));
    csal_testkit::file_protocols::health_check_sweeps_old_temp_files(
        &r,
        "t",
        &std::path::Path::new(&s.home).join(&base),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_prefixes_cannot_leave_the_base_folder() {
    let Some(s) = server("sftp-list-escape") else { return };
    let base = format!("csal-escape-{}", ulid::Ulid::new().to_string().to_lowercase());
    let (inner, outer) = (router(password_config(&s, &format!("{base}/inner"))), router(password_config(&s, &base)));
    csal_testkit::file_protocols::list_prefixes_cannot_leave_the_base(&inner, &outer, "t").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn flipped_byte_on_the_server_is_an_integrity_error_against_the_kept_checksum() {
    let Some(s) = server("sftp-bit-rot") else { return };
    assert!(!s.home.is_empty(), "CSAL_TEST_SFTP_HOME is needed to corrupt a stored file");
    let base = format!("csal-rot-{}", ulid::Ulid::new().to_string().to_lowercase());
    let r = router(password_config(&s, &base));
    csal_testkit::file_protocols::flipped_byte_is_an_integrity_error(
        &r,
        "t",
        &std::path::Path::new(&s.home).join(&base),
    )
    .await;
}
