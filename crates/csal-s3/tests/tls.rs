//! A private CA for S3 (`ca_file`): moto behind csal-testkit's TLS proxy,
//! whose certificate a CA made by the test signed.

mod common;

csal_core::link_providers!(csal_s3);

use common::{BUCKET, Server};
use csal_testkit::tls::TlsProxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_trusts_the_ca_in_ca_file_and_refuses_an_unknown_one() {
    let Some(server) = Server::moto() else { return };
    server.ensure_bucket(BUCKET).await;
    let proxy = TlsProxy::in_front_of(&server.endpoint).await;
    let mut without_ca = server.config(BUCKET);
    without_ca["endpoint"] = proxy.rewrite(&server.endpoint).into();
    let mut with_ca = without_ca.clone();
    with_ca["ca_file"] = proxy.ca_file().into();
    csal_conformance::tls::private_ca("s3", with_ca, without_ca).await;
}

/// A `ca_file` that is missing or holds no certificate stops the instance
/// from loading (InvalidConfig), before any request.
#[test]
fn a_bad_ca_file_is_refused_when_the_module_is_built() {
    let mut config = csal_s3::S3Config::new("bucket");
    config.endpoint = Some("https://127.0.0.1:1".into());
    config.ca_file = Some("/nonexistent/ca.pem".into());
    let err = csal_s3::S3Module::new(config).expect_err("a missing ca_file is refused");
    assert_eq!(err.kind(), csal_core::ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("ca_file"), "{err}");
}
