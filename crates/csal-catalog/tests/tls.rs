//! A PostgreSQL catalog over TLS with a private CA: csal-testkit's
//! SSLRequest-aware TLS proxy (certificate signed by a CA made by the test)
//! in front of the PostgreSQL server `cargo xtask` starts
//! (`CSAL_TEST_POSTGRES_URL`; a missing server under `CI` fails).

use std::time::Duration;

use csal_catalog::{Catalog, MasterKey};
use csal_core::ErrorKind;
use csal_testkit::tls::{TlsProxy, socket_of};

fn key() -> MasterKey {
    MasterKey::Explicit(MasterKey::generate().unwrap())
}

fn postgres_url() -> Option<String> {
    match std::env::var("CSAL_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("CSAL_TEST_POSTGRES_URL is not set under CI: the PostgreSQL TLS test cannot run")
        }
        Err(_) => {
            eprintln!("SKIP: CSAL_TEST_POSTGRES_URL is not set; PostgreSQL TLS test skipped");
            None
        }
    }
}

/// A fresh schema on the server (reached directly), so the catalog's tables
/// are this test's own; the `search_path` option selects it.
async fn fresh_schema(base: &str) -> String {
    let schema = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
    let pool = csal_sql::DbLocation::parse(base, None, true)
        .unwrap()
        .connect(1, Duration::from_secs(10))
        .await
        .expect("connect to CSAL_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&pool).await.unwrap();
    pool.close().await;
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_catalog_verifies_tls_with_the_ca_in_sslrootcert() {
    let Some(base) = postgres_url() else { return };
    let schema = fresh_schema(&base).await;
    let server = socket_of(&base);
    let proxy = TlsProxy::postgres(server).await;
    let behind = base.replace(&server.to_string(), &format!("127.0.0.1:{}", proxy.port));
    let sep = if behind.contains('?') { '&' } else { '?' };
    let behind = format!("{behind}{sep}options[search_path]={schema}");

    // sslrootcert alone: verified (sslmode becomes verify-full), and it works.
    let with_ca = csal_sql::DbLocation::with_root_cert(&behind, &proxy.ca_file()).unwrap();
    let shown = csal_sql::DbLocation::parse(&with_ca, None, true).unwrap();
    assert!(shown.display_url().contains("sslmode=verify-full"), "{}", shown.display_url());
    let catalog = Catalog::open(&with_ca, key()).await.expect("catalog over TLS");
    catalog.set_setting("tls-check", "over TLS", false).await.expect("write through TLS");
    assert!(catalog.list_modules().await.expect("read through TLS").is_empty());

    // verify-full without the CA: refused, clearly, and quickly.
    let without_ca = format!("{behind}&sslmode=verify-full");
    let open = Catalog::open(&without_ca, key());
    let err = tokio::time::timeout(Duration::from_secs(60), open)
        .await
        .expect("a refused certificate does not hang")
        .expect_err("the test CA is not trusted without sslrootcert");
    assert_eq!(err.kind(), ErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains("not trusted") && err.to_string().contains("sslrootcert"), "{err}");

    // The proxy speaks only TLS: a client that does not ask for it is refused.
    let plain = format!("{behind}&sslmode=disable");
    assert!(Catalog::open(&plain, key()).await.is_err(), "plain text went through");
}

#[test]
fn a_missing_sslrootcert_is_refused_when_the_url_is_parsed() {
    let err = csal_sql::DbLocation::parse("postgres://u@127.0.0.1/db?sslrootcert=/nonexistent/ca.pem", None, false)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("sslrootcert") && err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
