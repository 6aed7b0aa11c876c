//! The admin UI in headless Chromium (chromedriver from
//! `cargo xtask emulators run chromedriver -- ...`, which exports
//! CSAL_TEST_WEBDRIVER_URL). Skipped locally without it; required in CI.
//! Screenshots go to target/screenshots/.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{PASSWORD, SECRET, fixture};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

fn webdriver_url() -> Option<String> {
    match std::env::var("CSAL_TEST_WEBDRIVER_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CSAL_TEST_WEBDRIVER_URL is not set: run through `cargo xtask test` (starts chromedriver)")
        }
        _ => {
            eprintln!(
                "SKIP browser tests: CSAL_TEST_WEBDRIVER_URL is not set (cargo xtask emulators run chromedriver -- cargo test -p csal-admin --test browser)"
            );
            None
        }
    }
}

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

async fn browser(webdriver: &str) -> Client {
    let mut caps = serde_json::Map::new();
    let mut opts = json!({"args": [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--window-size=1280,900"
    ]});
    if std::path::Path::new("/usr/bin/chromium").exists() {
        opts["binary"] = json!("/usr/bin/chromium");
    }
    caps.insert("goog:chromeOptions".into(), opts);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(webdriver)
        .await
        .expect("a chromedriver session")
}

/// Click the submit button of the form posting to `action`.
async fn submit(c: &Client, action: &str) {
    c.find(Locator::Css(&format!("form[action='{action}'] button[type=submit]"))).await.unwrap().click().await.unwrap();
}

/// The element once the page shows it. A lookup that lands while a submit
/// navigates answers "aborted by navigation" (chromedriver; fantoccini's own
/// wait gives up on it and failed CI once), so that is looked at again too.
async fn wait_css(c: &Client, css: &str) -> fantoccini::elements::Element {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match c.find(Locator::Css(css)).await {
            Ok(element) => return element,
            Err(e)
                if std::time::Instant::now() < deadline
                    && (e.is_no_such_element() || e.to_string().contains("aborted by navigation")) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{css}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ui_in_headless_chromium() {
    let Some(webdriver) = webdriver_url() else { return };
    let f = fixture().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let c = browser(&webdriver).await;
    let result = tokio::time::timeout(Duration::from_secs(180), scenario(&c, &base, &f)).await;
    let _ = shot(&c, "last").await;
    c.close().await.unwrap();
    server.abort();
    result.expect("browser scenario timed out");
}

async fn scenario(c: &Client, base: &str, f: &common::Fixture) {
    // Log in (a page behind the login redirects there first).
    c.goto(&format!("{base}/modules")).await.unwrap();
    wait_css(c, "#password").await;
    assert!(c.current_url().await.unwrap().path().ends_with("/login"));
    shot(c, "login").await;
    c.find(Locator::Css("#password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    c.find(Locator::Css("#login")).await.unwrap().click().await.unwrap();
    wait_css(c, "#add-module").await;

    // Add a local_fs module through the form.
    c.find(Locator::Css("#add-module")).await.unwrap().click().await.unwrap();
    wait_css(c, "#provider").await.select_by_value("local_fs").await.unwrap();
    c.find(Locator::Css("#choose-provider")).await.unwrap().click().await.unwrap();
    wait_css(c, "#field-root").await.send_keys(&f.root("disk")).await.unwrap();
    c.find(Locator::Css("#field-name")).await.unwrap().send_keys("disk").await.unwrap();
    c.find(Locator::Css("#field-label")).await.unwrap().send_keys("Local disk").await.unwrap();
    let min_free = c.find(Locator::Css("#field-min_free_mb")).await.unwrap();
    min_free.clear().await.unwrap();
    min_free.send_keys("1").await.unwrap();
    shot(c, "add-local-fs-form").await;
    c.find(Locator::Css("#save")).await.unwrap().click().await.unwrap();
    wait_css(c, "#status").await;
    assert!(f.catalog.get_module("disk").await.unwrap().is_enabled);

    // Test shows ok, inline.
    submit(c, "/modules/disk/test").await;
    let result = wait_css(c, "#test-result").await;
    assert_eq!(result.attr("data-status").await.unwrap().as_deref(), Some("ok"), "{}", result.text().await.unwrap());
    shot(c, "module-test-ok").await;

    // Disable it.
    submit(c, "/modules/disk/disable").await;
    wait_css(c, "form[action='/modules/disk/enable']").await;
    assert!(!f.catalog.get_module("disk").await.unwrap().is_enabled);

    // A required field left empty: the browser will not send the form.
    c.goto(&format!("{base}/modules/new?provider=local_fs")).await.unwrap();
    wait_css(c, "#field-name").await.send_keys("broken").await.unwrap();
    let valid = c.execute("return document.querySelector('#module-form').checkValidity();", vec![]).await.unwrap();
    assert_eq!(valid, json!(false), "the empty root is caught before sending");
    // The server checks too (a browser that skips validation): the form
    // comes back with the field's error, tied to the field.
    c.execute("document.querySelector('#module-form').noValidate = true;", vec![]).await.unwrap();
    c.find(Locator::Css("#save")).await.unwrap().click().await.unwrap();
    let err = wait_css(c, "#wrap-root .field-error").await;
    assert!(err.text().await.unwrap().contains("root"), "{}", err.text().await.unwrap());
    let root = c.find(Locator::Css("#field-root")).await.unwrap();
    assert_eq!(root.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    let described = root.attr("aria-describedby").await.unwrap().expect("aria-describedby");
    assert_eq!(err.attr("id").await.unwrap(), Some(described));
    shot(c, "bad-config-field-error").await;
    assert!(f.catalog.get_module("broken").await.is_err());

    // An S3-type module: the secret typed in never comes back in any page.
    c.goto(&format!("{base}/modules/new?provider=test_s3")).await.unwrap();
    wait_css(c, "#field-name").await.send_keys("cloud").await.unwrap();
    c.find(Locator::Css("#field-bucket")).await.unwrap().send_keys("videos").await.unwrap();
    c.find(Locator::Css("#field-access_key_id")).await.unwrap().send_keys("AKIDEXAMPLE").await.unwrap();
    c.find(Locator::Css("#field-secret_access_key")).await.unwrap().send_keys(SECRET).await.unwrap();
    c.find(Locator::Css("#save")).await.unwrap().click().await.unwrap();
    wait_css(c, "#status").await;
    for path in ["/modules/cloud", "/modules/cloud/edit", "/modules"] {
        c.goto(&format!("{base}{path}")).await.unwrap();
        wait_css(c, "main").await;
        let html = c.source().await.unwrap();
        assert!(!html.contains(SECRET), "{path} contains the secret");
        assert!(html.contains("cloud"), "{path}");
    }
    c.goto(&format!("{base}/modules")).await.unwrap();
    wait_css(c, "#module-cloud").await;
    shot(c, "modules").await;

    // A form post without the CSRF token is refused.
    c.execute(
        "const f = document.querySelector(\"form[action='/modules/cloud/disable']\");\
         f.querySelector(\"input[name=csrf]\").remove(); f.submit();",
        vec![],
    )
    .await
    .unwrap();
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_url(&url::Url::parse(&format!("{base}/modules/cloud/disable")).unwrap())
        .await
        .unwrap();
    let body = c.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
    assert!(body.contains("CSRF"), "{body}");
    assert!(f.catalog.get_module("cloud").await.unwrap().is_enabled, "the forged post changed nothing");

    // Camera policy: view and edit.
    c.goto(&format!("{base}/policies")).await.unwrap();
    wait_css(c, "#camera").await.send_keys("cam-5").await.unwrap();
    c.find(Locator::Css("#targets")).await.unwrap().send_keys("cloud\ndisk").await.unwrap();
    c.find(Locator::Css("#save-policy")).await.unwrap().click().await.unwrap();
    wait_css(c, "#policies").await;
    assert_eq!(f.catalog.get_policy("cam-5").await.unwrap().targets, vec!["cloud".to_owned(), "disk".to_owned()]);
    shot(c, "policies").await;

    // The module page with some metrics.
    let router = f.catalog.router();
    router
        .write("cloud", csal_core::ByteStream::from_bytes(vec![7u8; 300_000]), csal_core::WriteMeta::new("cam-5/a.mp4"))
        .await
        .unwrap();
    let _ = router.stat("cloud", "missing.mp4").await;
    c.goto(&format!("{base}/modules/cloud")).await.unwrap();
    wait_css(c, "#metrics").await;
    shot(c, "module-detail-metrics").await;
    // The last hour's charts (inline SVG) render in the browser.
    wait_css(c, "#chart-latency").await;
    let charts = wait_css(c, "#charts").await.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join("module-detail-charts.png"), charts).unwrap();
    styled_under_the_csp(c).await;

    // Delete asks first (the page's script, allowed by the CSP): declined,
    // nothing happens; accepted, the module goes.
    f.add_local("scratch").await;
    c.goto(&format!("{base}/modules/scratch")).await.unwrap();
    wait_css(c, "#status").await;
    c.execute("window.confirm = function (q) { window.asked = q; return false; };", vec![]).await.unwrap();
    submit(c, "/modules/scratch/delete").await;
    let asked = c.execute("return window.asked || null;", vec![]).await.unwrap();
    assert!(asked.as_str().is_some_and(|q| q.contains("Delete this module")), "{asked}");
    assert!(f.catalog.get_module("scratch").await.is_ok(), "a declined delete deletes nothing");
    c.execute("window.confirm = function () { return true; };", vec![]).await.unwrap();
    submit(c, "/modules/scratch/delete").await;
    wait_css(c, "#modules").await;
    assert!(f.catalog.get_module("scratch").await.is_err());
}

/// The page got its stylesheet despite the CSP (it is a file of this
/// origin), and the navigation marks where we are.
async fn styled_under_the_csp(c: &Client) {
    let header =
        c.execute("return getComputedStyle(document.querySelector('header')).backgroundColor;", vec![]).await.unwrap();
    assert_eq!(header, json!("rgb(31, 42, 60)"), "the stylesheet applies");
    let current = c.find(Locator::Css("nav a[aria-current=page]")).await.unwrap();
    assert_eq!(current.attr("href").await.unwrap().as_deref(), Some("/modules"));
}
