//! `csal import` from a database shaped like the seed's: its
//! `storage_modules` rows (integer ids, datetimes, nullable flags, legacy
//! config keys) and camera policies become modules and policies here,
//! secrets sealed, and the source is not changed by a single byte.

mod common;
use common::require;

use assert_cmd::Command;
use serde_json::Value;
use sqlx::{Connection, Executor};

const SECRET: &str = "legacy-secret-K3y";

/// The seed's schema and example rows (section 4 and 6 of the guide), plus
/// rows that cannot come over.
async fn seed_database(url: &str, data_dir: &std::path::Path) {
    sqlx::any::install_default_drivers();
    let postgres = url.starts_with("postgres");
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let (id, datetime) =
        if postgres { ("SERIAL PRIMARY KEY", "TIMESTAMP") } else { ("INTEGER PRIMARY KEY AUTOINCREMENT", "DATETIME") };
    conn.execute(&*format!(
        "CREATE TABLE storage_modules (
            id {id},
            name VARCHAR(128) NOT NULL UNIQUE,
            label VARCHAR(255),
            provider_type VARCHAR(64) NOT NULL,
            is_enabled INTEGER,
            config_json TEXT,
            created_at {datetime} NOT NULL,
            updated_at {datetime}
        )"
    ))
    .await
    .unwrap();
    conn.execute("CREATE TABLE camera_storage_policies (camera_id VARCHAR(64) PRIMARY KEY, storage_targets TEXT)")
        .await
        .unwrap();
    let s3 = format!(
        r#"{{"bucket": "my-recordings-bucket", "endpoint": "http://127.0.0.1:9", "region": "us-east-1", "access_key": "AKIAEXAMPLE", "secret_key": "{SECRET}"}}"#
    );
    let local = format!(r#"{{"path": "{}"}}"#, data_dir.display());
    // name, label, provider_type, is_enabled, config_json
    type SeedRow<'a> = (&'a str, Option<&'a str>, &'a str, Option<i32>, Option<String>);
    let rows: Vec<SeedRow> = vec![
        ("s3:archive", Some("Archive"), "s3", Some(1), Some(s3)),
        ("local:disk", None, "local_fs", None, Some(local)),
        ("gcs:corp-backups", None, "gcs", Some(1), Some(r#"{"bucket_name": "b", "prefix": "cams/"}"#.into())),
        ("mycloud:archive", None, "mycloud", Some(1), Some(r#"{"bucket": "pv-archive"}"#.into())),
        ("broken", None, "webdav", Some(0), Some("{not json".into())),
        ("off:disk", None, "local_fs", Some(0), Some(format!(r#"{{"root": "{}"}}"#, data_dir.display()))),
        ("legacy-db", None, "db", Some(1), None),
    ];
    for (name, label, provider, enabled, config) in rows {
        sqlx::query(
            "INSERT INTO storage_modules (name, label, provider_type, is_enabled, config_json, created_at) \
             VALUES ($1, $2, $3, $4, $5, CAST('2024-03-01 12:00:00' AS TIMESTAMP))",
        )
        .bind(name)
        .bind(label)
        .bind(provider)
        .bind(enabled)
        .bind(config)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.execute(
        "INSERT INTO camera_storage_policies VALUES ('cam-1', '[\"local:disk\", \"s3:archive\"]'), \
         ('cam-2', 'mycloud:archive'), ('cam-3', 'local:disk')",
    )
    .await
    .unwrap();
    conn.close().await.unwrap();
}

fn csal(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("csal")
        .unwrap()
        .current_dir(dir)
        .env_remove("CSAL_MASTER_KEY")
        .env("CSAL_CATALOG", dir.join("csal.db"))
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_database_imports_with_every_refusal_explained_and_the_source_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("recordings.db");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    seed_database(&format!("sqlite://{}?mode=rwc", source.display()), &data).await;
    let before = std::fs::read(&source).unwrap();
    let from = format!("sqlite://{}", source.display());
    import_and_check(dir.path(), &from).await;
    assert_eq!(std::fs::read(&source).unwrap(), before, "the source database changed");
    let (code, _, err) = csal(dir.path(), &["import", "--from", "/no/such.db"]);
    assert_ne!(code, 0);
    assert!(err.contains("/no/such.db"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_database_on_postgresql_imports_the_same() {
    let Some(base) = require("CSAL_TEST_POSTGRES_URL") else { return };
    sqlx::any::install_default_drivers();
    let schema = format!("seed_{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut admin = sqlx::AnyConnection::connect(&base).await.unwrap();
    admin.execute(&*format!("CREATE SCHEMA {schema}")).await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    seed_database(&url, &data).await;
    import_and_check(dir.path(), &url).await;
    // Nothing was written to the source: the same row count, no new tables.
    let tables: i64 =
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '{schema}'"))
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!(tables, 2);
    admin.execute(&*format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
}

async fn import_and_check(dir: &std::path::Path, from: &str) {
    // Dry run: the plan, nothing created.
    let (code, out, _) = csal(dir, &["--json", "import", "--from", from, "--dry-run"]);
    assert_eq!(code, 4, "some rows cannot come over: {out}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let outcome =
        |name: &str| plan["rows"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["outcome"].clone();
    assert_eq!(outcome("s3:archive"), "would import");
    assert_eq!(outcome("cam-1"), "would import");
    let (_, listed, _) = csal(dir, &["--json", "module", "list"]);
    assert_eq!(serde_json::from_str::<Value>(&listed).unwrap().as_array().unwrap().len(), 0);

    // The import itself.
    let (code, out, err) = csal(dir, &["--json", "import", "--from", from]);
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(!out.contains(SECRET) && !err.contains(SECRET), "a secret was printed");
    let report: Value = serde_json::from_str(&out).unwrap();
    let row = |name: &str| report["rows"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone();
    assert_eq!(row("s3:archive")["outcome"], "imported");
    assert_eq!(row("local:disk")["outcome"], "imported");
    assert_eq!(row("local:disk")["detail"], "path -> root");
    for (name, why) in [
        ("gcs:corp-backups", "prefix"),
        ("mycloud:archive", "mycloud"),
        ("broken", "JSON"),
        ("legacy-db", "by hand"),
        ("cam-2", "mycloud:archive"),
    ] {
        let r = row(name);
        assert_eq!(r["outcome"], "failed", "{r}");
        assert!(r["detail"].as_str().unwrap().contains(why), "{r}");
    }
    assert_eq!(row("cam-1")["outcome"], "imported");
    // What arrived: label, NULL flag as enabled, the secret sealed (masked).
    let (_, shown, _) = csal(dir, &["--json", "module", "show", "s3:archive"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!((shown["label"].as_str(), shown["config"]["secret_key"].as_str()), (Some("Archive"), Some("********")));
    let (_, disk, _) = csal(dir, &["--json", "module", "show", "local:disk"]);
    assert_eq!(serde_json::from_str::<Value>(&disk).unwrap()["is_enabled"], true, "NULL is enabled");
    let (_, off, _) = csal(dir, &["--json", "module", "show", "off:disk"]);
    assert_eq!(serde_json::from_str::<Value>(&off).unwrap()["is_enabled"], false, "0 stays disabled");
    let raw = std::fs::read(dir.join("csal.db")).unwrap();
    assert!(!raw.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret is stored sealed");
    let (_, policy, _) = csal(dir, &["--json", "policy", "show", "cam-1"]);
    let policy: Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(policy["policy"]["targets"], serde_json::json!(["local:disk", "s3:archive"]));

    // Again: everything here already is skipped, nothing overwritten.
    let (_, again, _) = csal(dir, &["--json", "import", "--from", from]);
    let again: Value = serde_json::from_str(&again).unwrap();
    let skipped = again["rows"].as_array().unwrap().iter().filter(|r| r["outcome"] == "skipped").count();
    assert_eq!(skipped, 5, "{again}");
}
