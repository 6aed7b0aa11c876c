//! The shared conformance suite and FTP-specific behaviour, on real vsftpd
//! servers started by `cargo xtask` (plain FTP and explicit FTPS; see
//! xtask/src/emulators/vsftpd.rs).

csal_core::link_providers!(csal_ftp);

use csal_testkit::tcp as common;

use std::net::SocketAddr;

use csal_conformance::{Target, require_env};
use csal_core::{ByteStream, ErrorKind, InstanceDefinition, ListRequest, StorageModule, StorageRouter, WriteMeta};
use serde_json::{Value, json};

struct Server {
    host: String,
    port: u16,
    tls_port: u16,
    user: String,
    password: String,
    home: String,
}

fn server(label: &str) -> Option<Server> {
    Some(Server {
        host: require_env("CSAL_TEST_FTP_HOST", label, "ftp")?,
        port: require_env("CSAL_TEST_FTP_PORT", label, "ftp")?.parse().expect("port"),
        tls_port: require_env("CSAL_TEST_FTPS_PORT", label, "ftp")?.parse().expect("port"),
        user: require_env("CSAL_TEST_FTP_USER", label, "ftp")?,
        password: require_env("CSAL_TEST_FTP_PASSWORD", label, "ftp")?,
        home: std::env::var("CSAL_TEST_FTP_HOME").unwrap_or_default(),
    })
}

fn plain(s: &Server, base_dir: &str) -> Value {
    json!({
        "host": s.host, "port": s.port, "username": s.user, "password": s.password, "base_dir": base_dir,
        "security": "none",
    })
}

fn ftps(s: &Server, base_dir: &str) -> Value {
    json!({
        "host": s.host, "port": s.tls_port, "username": s.user, "password": s.password, "base_dir": base_dir,
        "security": "explicit_tls", "accept_invalid_certs": true,
    })
}

fn router(config: Value) -> StorageRouter {
    StorageRouter::from_definitions(&[InstanceDefinition::new("t", "ftp", config)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plain_ftp_passes_conformance() {
    let label = "ftp@vsftpd";
    let Some(s) = server(label) else { return };
    let mut bad = plain(&s, "csal-conformance-ftp");
    bad["password"] = json!("wrong-password-for-test");
    let target = Target::new(label, "ftp", plain(&s, "csal-conformance-ftp")).list_objects(1000).bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explicit_ftps_passes_conformance() {
    let label = "ftp@vsftpd-ftps";
    let Some(s) = server(label) else { return };
    let mut bad = ftps(&s, "csal-conformance-ftps");
    bad["password"] = json!("wrong-password-for-test");
    let target = Target::new(label, "ftp", ftps(&s, "csal-conformance-ftps")).list_objects(1000).bad_credentials(bad);
    csal_conformance::run(target).await.assert_passed();
}

#[tokio::test(flavor = "multi_thread")]
async fn self_signed_certificate_is_refused_by_default() {
    let Some(s) = server("ftps-untrusted") else { return };
    let mut config = ftps(&s, "csal-untrusted");
    config["accept_invalid_certs"] = json!(false);
    let r = router(config);
    let err = r.write("t", ByteStream::from_bytes(&b"x"[..]), WriteMeta::new("x.bin")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_login_on_a_tls_only_server_is_an_auth_error() {
    let Some(s) = server("ftps-plain-login") else { return };
    let mut config = plain(&s, "csal-plain-on-tls");
    config["port"] = json!(s.tls_port);
    let err = router(config).write("t", ByteStream::from_bytes(&b"x"[..]), WriteMeta::new("x.bin")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_control_connection_mid_write_fails_transient_and_leaves_nothing_visible() {
    let Some(s) = server("ftp-fault") else { return };
    let target: SocketAddr = format!("{}:{}", s.host, s.port).parse().expect("addr");
    let proxy = common::CutProxy::start(target).await;
    let base = format!("csal-fault-{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut config = plain(&s, &base);
    config["port"] = json!(proxy.port);
    config["operation_timeout_secs"] = json!(20);
    config["max_connections"] = json!(1);
    let r = router(config);
    let m = r.module("t").unwrap();
    m.validate().await.expect("validate through the proxy");

    // The control connection carries only commands: the body itself cuts it
    // once 8 MiB went into the data connection, i.e. in the middle of the STOR.
    let len = 32 * 1024 * 1024;
    let result = m.write(cutting_body(len, 8 * 1024 * 1024, proxy.cutter()), WriteMeta::new("cam/seg.bin")).await;
    assert!(proxy.cuts() >= 1, "the proxy did not cut the connection");
    eprintln!(
        "write with the control connection cut gave: {:?}",
        result.as_ref().map(|r| &r.object_id).map_err(|e| e.to_string())
    );
    match &result {
        Err(e) => assert!(e.is_transient(), "expected a transient error, got {:?}: {e}", e.kind()),
        Ok(r) => {
            let back = m.read(&r.object_id, None).await.unwrap();
            let (_, n) = crc(back).await;
            assert_eq!(n, len as u64);
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
    // The pool reconnects: the next write works and reads back.
    let data = vec![9u8; 2 * 1024 * 1024 + 3];
    let receipt = m.write(ByteStream::from_bytes(data.clone()), WriteMeta::new("cam/after.bin")).await.unwrap();
    let back = m.read(&receipt.object_id, None).await.unwrap().collect_limited(8 << 20).await.unwrap();
    assert_eq!(back.as_ref(), data.as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn ranged_read_that_stops_early_leaves_the_pool_usable() {
    let Some(s) = server("ftp-range-pool") else { return };
    let mut config = plain(&s, "csal-range-pool");
    config["max_connections"] = json!(1);
    let r = router(config);
    let m = r.module("t").unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let receipt = m.write(ByteStream::from_bytes(data.clone()), WriteMeta::new("r.bin")).await.unwrap();
    for (start, end) in [(10u64, 20u64), (1_000_000, 1_000_000), (0, 2_999_999), (2_999_990, 5_000_000)] {
        let got = m
            .read(&receipt.object_id, Some(csal_core::ByteRange::inclusive(start, end)))
            .await
            .unwrap()
            .collect_limited(4 << 20)
            .await
            .unwrap();
        let end = (end as usize).min(data.len() - 1);
        assert_eq!(got.as_ref(), &data[start as usize..=end], "range {start}-{end}");
    }
    m.delete(&receipt.object_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn active_mode_round_trip_and_listing() {
    let Some(s) = server("ftp-active") else { return };
    let mut config = plain(&s, &format!("csal-active-{}", ulid::Ulid::new().to_string().to_lowercase()));
    config["active_mode"] = json!(true);
    let r = router(config);
    let m = r.module("t").unwrap();
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 241) as u8).collect();
    let receipt = m.write(ByteStream::from_bytes(data.clone()), WriteMeta::new("cam/a.bin")).await.unwrap();
    let back = m.read(&receipt.object_id, None).await.unwrap().collect_limited(1 << 20).await.unwrap();
    assert_eq!(back.as_ref(), data.as_slice());
    let page = m.list(&ListRequest::new("cam")).await.unwrap();
    assert_eq!(page.objects.iter().map(|o| o.object_id.clone()).collect::<Vec<_>>(), vec![receipt.object_id.clone()]);
    m.delete(&receipt.object_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_sweep_temp_files_older_than_a_day() {
    let Some(s) = server("ftp-sweep") else { return };
    assert!(!s.home.is_empty(), "CSAL_TEST_FTP_HOME is needed to plant leftovers");
    let base = format!("csal-sweep-{}", ulid::Ulid::new().to_string().to_lowercase());
    let r = router(plain(&s, &base));
    csal_testkit::file_protocols::health_check_sweeps_old_temp_files(
        &r,
        "t",
        &std::path::Path::new(&s.home).join(&base),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_prefixes_cannot_leave_the_base_folder() {
    let Some(s) = server("ftp-list-escape") else { return };
    let base = format!("csal-escape-{}", ulid::Ulid::new().to_string().to_lowercase());
    let (inner, outer) = (router(plain(&s, &format!("{base}/inner"))), router(plain(&s, &base)));
    csal_testkit::file_protocols::list_prefixes_cannot_leave_the_base(&inner, &outer, "t").await;
}

/// A generated body that calls `cut` once `cut_at` bytes were produced.
fn cutting_body(len: usize, cut_at: usize, cut: impl Fn() + Send + Sync + 'static) -> ByteStream {
    let chunk = 256 * 1024;
    let stream = futures::stream::iter(0..len.div_ceil(chunk)).map(move |i| {
        if i * chunk == cut_at {
            cut();
        }
        Ok(bytes::Bytes::from(vec![i as u8; chunk.min(len - i * chunk)]))
    });
    ByteStream::new(stream, None)
}

use futures::StreamExt;

async fn crc(mut body: ByteStream) -> (u32, u64) {
    let (mut crc, mut len) = (0u32, 0u64);
    while let Some(c) = body.next().await {
        let c = c.unwrap();
        crc = crc32c::crc32c_append(crc, &c);
        len += c.len() as u64;
    }
    (crc, len)
}
