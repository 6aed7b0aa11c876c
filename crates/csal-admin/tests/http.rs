//! The admin app over HTTP, in process (no browser): authentication, CSRF,
//! secrets never rendered, form errors, JSON API, Prometheus metrics.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{PASSWORD, SECRET, fixture};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(app: &axum::Router, req: Request<Body>) -> Resp {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Resp { status, headers, body }
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

fn post_form(path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(serde_urlencoded::to_string(form).unwrap())).unwrap()
}

fn cookie_of(r: &Resp) -> String {
    let set = r.headers.get(header::SET_COOKIE).expect("a session cookie").to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// Log in; returns (cookie, csrf).
async fn login(app: &axum::Router) -> (String, String) {
    let page = send(app, get("/login", None)).await;
    let pre = cookie_of(&page);
    let r = send(app, post_form("/login", Some(&pre), &[("csrf", &csrf_in(&page.body)), ("password", PASSWORD)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cookie = cookie_of(&r);
    assert_ne!(cookie, pre, "the session id changes on login");
    let modules = send(app, get("/modules", Some(&cookie))).await;
    assert_eq!(modules.status, StatusCode::OK);
    (cookie, csrf_in(&modules.body))
}

#[tokio::test]
async fn pages_and_api_need_a_session_or_token_except_login_and_healthz() {
    let f = fixture().await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    assert_eq!(send(&app, get("/healthz", None)).await.status, StatusCode::OK);
    assert_eq!(send(&app, get("/login", None)).await.status, StatusCode::OK);
    let r = send(&app, get("/modules", None)).await;
    assert_eq!((r.status, r.headers.get("location").unwrap().to_str().unwrap()), (StatusCode::SEE_OTHER, "/login"));
    for path in ["/api/modules", "/metrics", "/api/providers"] {
        assert_eq!(send(&app, get(path, None)).await.status, StatusCode::UNAUTHORIZED, "{path}");
        let bad = Request::get(path).header(header::AUTHORIZATION, "Bearer csal_wrong").body(Body::empty()).unwrap();
        assert_eq!(send(&app, bad).await.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // A session that never logged in is not enough.
    let page = send(&app, get("/login", None)).await;
    assert_eq!(send(&app, get("/modules", Some(&cookie_of(&page)))).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn wrong_password_is_refused_and_login_needs_its_csrf_token() {
    let f = fixture().await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let page = send(&app, get("/login", None)).await;
    let pre = cookie_of(&page);
    let csrf = csrf_in(&page.body);
    let r = send(&app, post_form("/login", Some(&pre), &[("csrf", &csrf), ("password", "nope-nope")])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong password"));
    let r = send(&app, post_form("/login", Some(&pre), &[("password", PASSWORD)])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, post_form("/login", None, &[("csrf", &csrf), ("password", PASSWORD)])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// `req` as if it came over TCP from `ip` (what `serve` records per connection).
fn from(ip: &str, mut req: Request<Body>) -> Request<Body> {
    let addr: std::net::SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
    req
}

/// A login page (cookie, csrf) fetched from `ip`.
async fn login_page_from(app: &axum::Router, ip: &str) -> (String, String) {
    let page = send(app, from(ip, get("/login", None))).await;
    (cookie_of(&page), csrf_in(&page.body))
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_out_that_client_but_not_the_admin_elsewhere() {
    let f = fixture().await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let guesser = "127.0.0.66";
    let (pre, csrf) = login_page_from(&app, guesser).await;
    for _ in 0..5 {
        let form = [("csrf", csrf.as_str()), ("password", "guess-guess")];
        let r = send(&app, from(guesser, post_form("/login", Some(&pre), &form))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let form = [("csrf", csrf.as_str()), ("password", PASSWORD)];
    let r = send(&app, from(guesser, post_form("/login", Some(&pre), &form))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "the right password during the lockout is not checked");
    let wait: u64 = r.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    assert!(r.body.contains("Too many wrong passwords"));

    // The admin at another address is not locked out by the guesser.
    let admin = "127.0.0.1";
    let (pre, csrf) = login_page_from(&app, admin).await;
    let form = [("csrf", csrf.as_str()), ("password", PASSWORD)];
    let r = send(&app, from(admin, post_form("/login", Some(&pre), &form))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_burst_from_one_client_gets_no_more_checks_than_the_lockout_allows() {
    let f = fixture().await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let guesser = "127.0.0.77";
    let (pre, csrf) = login_page_from(&app, guesser).await;
    let burst = (0..20).map(|i| {
        let (app, pre, csrf) = (app.clone(), pre.clone(), csrf.clone());
        tokio::spawn(async move {
            let guess = format!("guess-{i:04}");
            let form = [("csrf", csrf.as_str()), ("password", guess.as_str())];
            send(&app, from(guesser, post_form("/login", Some(&pre), &form))).await.status
        })
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(burst).await.into_iter().map(Result::unwrap).collect();
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + refused, 20, "{statuses:?}");
    assert!(
        (1..=csal_admin::throttle::FREE_FAILURES as usize).contains(&checked),
        "{checked} passwords were checked for one client: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_checks_from_many_clients_run_at_most_a_few_at_a_time() {
    let f = fixture().await;
    let state = csal_admin::AdminState::new(f.catalog.clone());
    let throttle = state.login_throttle.clone();
    let app = csal_admin::app(state);
    let mut pages = Vec::new();
    for i in 0..12 {
        let ip = format!("127.0.1.{i}");
        let (pre, csrf) = login_page_from(&app, &ip).await;
        pages.push((ip, pre, csrf));
    }
    let burst = pages.into_iter().map(|(ip, pre, csrf)| {
        let app = app.clone();
        tokio::spawn(async move {
            let form = [("csrf", csrf.as_str()), ("password", "guess-guess")];
            send(&app, from(&ip, post_form("/login", Some(&pre), &form))).await.status
        })
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(burst).await.into_iter().map(Result::unwrap).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED), "{statuses:?}");
    let peak = throttle.peak_concurrent_verifications();
    assert!(
        (1..=csal_admin::throttle::MAX_CONCURRENT_VERIFICATIONS).contains(&peak),
        "{peak} argon2 checks ran at once"
    );
}

#[tokio::test]
async fn posts_without_the_csrf_token_are_refused() {
    let f = fixture().await;
    f.add_local("disk").await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, csrf) = login(&app).await;
    let r = send(&app, post_form("/modules/disk/disable", Some(&cookie), &[])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, post_form("/modules/disk/disable", Some(&cookie), &[("csrf", "forged")])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let json_post =
        Request::post("/api/modules/disk/disable").header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
    assert_eq!(send(&app, json_post).await.status, StatusCode::FORBIDDEN);
    let with_header = Request::post("/api/modules/disk/test")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, with_header).await.status, StatusCode::OK, "session + X-CSRF-Token works for the API");
    assert!(f.catalog.get_module("disk").await.unwrap().is_enabled, "nothing changed");
    // With the token it works.
    let r = send(&app, post_form("/modules/disk/disable", Some(&cookie), &[("csrf", &csrf)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(!f.catalog.get_module("disk").await.unwrap().is_enabled);
}

#[tokio::test]
async fn secrets_are_never_rendered_in_pages_or_api() {
    let f = fixture().await;
    f.add_test_s3("cloud").await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, csrf) = login(&app).await;
    for path in ["/modules", "/modules/cloud", "/modules/cloud/edit", "/api/modules", "/api/modules/cloud", "/metrics"]
    {
        let r = send(&app, get(path, Some(&cookie))).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(!r.body.contains(SECRET), "{path} shows the secret");
    }
    let edit = send(&app, get("/modules/cloud/edit", Some(&cookie))).await;
    assert!(edit.body.contains(r#"type="password""#) && edit.body.contains("AKIDEXAMPLE"), "{}", edit.body);
    // Saving the edit form with the secret left empty keeps the stored secret.
    let r = send(
        &app,
        post_form(
            "/modules/cloud/edit",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("label", "Cloud"),
                ("cfg.bucket", "b2"),
                ("cfg.access_key_id", "AKIDEXAMPLE"),
                ("cfg.secret_access_key", ""),
            ],
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let defs = f.catalog.definitions().await.unwrap();
    let def = defs.iter().find(|d| d.name == "cloud").unwrap();
    assert!(def.config_json.contains(SECRET) && def.config_json.contains("b2"), "secret kept, bucket changed");
}

#[tokio::test]
async fn bad_config_in_the_form_shows_the_field_error() {
    let f = fixture().await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, csrf) = login(&app).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("provider_type", "local_fs"),
        ("name", "disk"),
        ("cfg.root", ""),
        ("cfg.min_free_mb", "lots"),
    ];
    let r = send(&app, post_form("/modules/new", Some(&cookie), &form)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("field-error") && r.body.contains("&#39;min_free_mb&#39;") || r.body.contains("'min_free_mb'"),
        "{}",
        r.body
    );
    // The error is announced with its field: aria-invalid, and
    // aria-describedby naming the error text.
    let bad = tag_with_id(&r.body, "field-min_free_mb");
    assert!(bad.contains(r#"aria-invalid="true""#) && bad.contains(r#"aria-describedby="error-min_free_mb""#), "{bad}");
    assert!(text_of(&r.body, "error-min_free_mb").contains("min_free_mb"), "{}", r.body);
    // Fields without an error carry neither; required ones say so.
    for id in ["field-root", "field-name"] {
        let good = tag_with_id(&r.body, id);
        assert!(
            good.contains(" required") && !good.contains("aria-invalid") && !good.contains("aria-describedby"),
            "{good}"
        );
    }
    assert!(!tag_with_id(&r.body, "field-label").contains("required"));
    let form = [("csrf", csrf.as_str()), ("provider_type", "local_fs"), ("name", "disk"), ("cfg.root", "")];
    let r = send(&app, post_form("/modules/new", Some(&cookie), &form)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("missing required field") && r.body.contains("wrap-root"), "{}", r.body);
    assert!(f.catalog.list_modules().await.unwrap().is_empty());
    // A secret typed into a failing form is not echoed back.
    let form = [
        ("csrf", csrf.as_str()),
        ("provider_type", "test_s3"),
        ("name", "c"),
        ("cfg.bucket", ""),
        ("cfg.access_key_id", "a"),
        ("cfg.secret_access_key", SECRET),
    ];
    let r = send(&app, post_form("/modules/new", Some(&cookie), &form)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.body.contains(SECRET));
}

/// A JSON API request with a bearer token.
fn api_request(auth: &str, method: &str, path: &str, body: Option<Value>) -> Request<Body> {
    let b = Request::builder().method(method).uri(path).header(header::AUTHORIZATION, auth);
    match body {
        Some(v) => b.header(header::CONTENT_TYPE, "application/json").body(Body::from(v.to_string())).unwrap(),
        None => b.body(Body::empty()).unwrap(),
    }
}

#[tokio::test]
async fn api_token_drives_the_json_api_and_metrics() {
    let f = fixture().await;
    let token = f.catalog.create_token("ci", csal_catalog::TokenScope::Admin).await.unwrap();
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let auth = format!("Bearer {token}");
    let call = |method: &str, path: &str, body: Option<Value>| api_request(&auth, method, path, body);
    let r = send(&app, call("POST", "/api/modules", Some(json!({"name": "disk", "provider_type": "local_fs", "config": {"root": f.root("disk"), "min_free_mb": 1}})))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = send(
        &app,
        call("POST", "/api/modules", Some(json!({"name": "bad", "provider_type": "local_fs", "config": {}}))),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"]["kind"], "invalid_config");
    let r = send(&app, call("POST", "/api/modules", Some(json!({"name": "x", "provider_type": "nope"})))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    let r = send(&app, call("POST", "/api/modules/disk/test", None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(serde_json::from_str::<Value>(&r.body).unwrap()["status"], "ok");
    let list: Value = serde_json::from_str(&send(&app, call("GET", "/api/modules", None)).await.body).unwrap();
    assert_eq!(list[0]["name"], "disk");
    assert_eq!(list[0]["health"]["status"], "ok");

    // Some traffic, then the metrics.
    let router = f.catalog.router();
    let receipt = router
        .write("disk", csal_core::ByteStream::from_bytes(&b"hello"[..]), csal_core::WriteMeta::new("a.txt"))
        .await
        .unwrap();
    let _ = router.stat("disk", "missing").await;
    let m: Value =
        serde_json::from_str(&send(&app, call("GET", "/api/modules/disk/metrics", None)).await.body).unwrap();
    assert_eq!(m["bytes_written"], 5);
    assert_eq!(m["operations"]["write"]["calls"], 1);
    let prom = send(&app, call("GET", "/metrics", None)).await;
    assert!(prom.body.contains(r#"csal_written_bytes_total{module="disk",provider="local_fs"} 5"#), "{}", prom.body);
    assert!(
        prom.body.contains(r#"csal_errors_total{module="disk",provider="local_fs",kind="not_found"} 1"#),
        "{}",
        prom.body
    );
    assert!(
        prom.body.contains(
            r#"csal_operation_duration_seconds_bucket{module="disk",provider="local_fs",operation="write",le="+Inf"} 1"#
        ),
        "{}",
        prom.body
    );
    assert!(prom.body.contains("# TYPE csal_operation_duration_seconds histogram"), "{}", prom.body);
    // Prometheus gives `instance` to the scrape target: never ours.
    assert!(!prom.body.contains("instance=\""), "{}", prom.body);
    // Health details reach Prometheus too, not only the JSON API.
    assert!(prom.body.contains(r#"csal_module_free_bytes{module="disk",provider="local_fs"} "#), "{}", prom.body);
    let _ = receipt;

    // Policies.
    let r = send(&app, call("PUT", "/api/policies/cam1", Some(json!({"targets": ["disk"]})))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(&app, call("PUT", "/api/policies/cam2", Some(json!({"targets": ["nope"]})))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(f.catalog.get_policy("cam1").await.unwrap().targets, vec!["disk".to_owned()]);

    let r = send(&app, call("DELETE", "/api/modules/disk", None)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a module in a policy cannot go: {}", r.body);
    assert_eq!(send(&app, call("DELETE", "/api/policies/cam1", None)).await.status, StatusCode::NO_CONTENT);
    let r = send(&app, call("POST", "/api/modules/disk/disable", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(send(&app, call("DELETE", "/api/modules/disk", None)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(send(&app, call("GET", "/api/modules/disk", None)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn seed_style_names_and_the_default_policy_work_through_the_api_and_the_form() {
    let f = fixture().await;
    let token = f.catalog.create_token("ci", csal_catalog::TokenScope::Admin).await.unwrap();
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let auth = format!("Bearer {token}");
    let call = |method: &str, path: &str, body: Option<Value>| api_request(&auth, method, path, body);
    // The seed's own example names, through the JSON API and the form.
    for folder in ["archive", "backups"] {
        std::fs::create_dir_all(f.root(folder)).unwrap();
    }
    let cfg = json!({"root": f.root("archive")});
    let r = send(
        &app,
        call(
            "POST",
            "/api/modules",
            Some(json!({"name": "mycloud:archive", "provider_type": "local_fs", "config": cfg})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (cookie, csrf) = login(&app).await;
    let root = f.root("backups");
    let form = [
        ("csrf", csrf.as_str()),
        ("provider_type", "local_fs"),
        ("name", "gcs:corp-backups"),
        ("enabled", "on"),
        ("cfg.root", root.as_str()),
    ];
    let r = send(&app, post_form("/modules/new", Some(&cookie), &form)).await;
    assert!(r.status.is_redirection(), "{} {}", r.status, r.body);
    let page = send(&app, get("/modules/gcs%3Acorp-backups", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("gcs:corp-backups"));
    assert!(page.body.contains(r#"id="health-details""#) && page.body.contains("free_bytes"), "{}", page.body);
    // The upload limit a module has is shown on its page.
    f.catalog.set_bandwidth("gcs:corp-backups", Some("08:00,1MiB/s 19:00,off")).await.unwrap();
    let page = send(&app, get("/modules/gcs%3Acorp-backups", Some(&cookie))).await;
    assert!(page.body.contains("08:00,1MiB/s 19:00,off"), "{}", page.body);
    for bad in ["..", ".hidden", "a/b", "a b"] {
        let r = send(&app, call("POST", "/api/modules", Some(json!({"name": bad, "provider_type": "memory"})))).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", r.body);
    }

    // No policy for cam7: a clear NotFound; then the default applies.
    assert_eq!(send(&app, call("GET", "/api/policies/cam7", None)).await.status, StatusCode::NOT_FOUND);
    let r =
        send(&app, call("PUT", "/api/policies/*", Some(json!({"targets": ["mycloud:archive", "gcs:corp-backups"]}))))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: Value = serde_json::from_str(&send(&app, call("GET", "/api/policies/cam7", None)).await.body).unwrap();
    assert_eq!((v["applies_from"].as_str(), v["targets"][1].as_str()), (Some("*"), Some("gcs:corp-backups")), "{v}");
    // A camera's own policy wins.
    send(&app, call("PUT", "/api/policies/cam7", Some(json!({"targets": ["gcs:corp-backups"]})))).await;
    let v: Value = serde_json::from_str(&send(&app, call("GET", "/api/policies/cam7", None)).await.body).unwrap();
    assert_eq!((v["applies_from"].as_str(), v["targets"].as_array().unwrap().len()), (Some("cam7"), 1), "{v}");
    // Writing for a camera without its own policy goes through the default.
    let written = f
        .catalog
        .write_for_camera("cam8", csal_core::ByteStream::from_bytes(&b"frame"[..]), csal_core::WriteMeta::new("a.bin"))
        .await
        .unwrap();
    assert_eq!(written.target, "mycloud:archive");
    let policies = send(&app, get("/policies", Some(&cookie))).await;
    assert!(policies.body.contains("default"), "{}", policies.body);
}

#[tokio::test]
async fn failed_instances_are_listed_offline_with_the_reason() {
    let f = fixture().await;
    f.catalog
        .create_module(csal_catalog::NewModule {
            name: "broken".into(),
            label: None,
            provider_type: "test_s3".into(),
            is_enabled: true,
            config: json!({"bucket": "fails-to-load", "access_key_id": "a", "secret_access_key": SECRET}),
        })
        .await
        .unwrap();
    common::FAIL_LOAD.store(true, std::sync::atomic::Ordering::SeqCst);
    let catalog = f.reopen().await;
    let app = csal_admin::app(csal_admin::AdminState::new(catalog.clone()));
    let (cookie, _) = login(&app).await;
    let page = send(&app, get("/modules", Some(&cookie))).await.body;
    let row = &page[page.find("id=\"module-broken\"").expect("broken listed")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("data-status=\"offline\""), "{row}");
    assert!(row.contains("failed to load") && row.contains("fails-to-load"), "{row}");
    assert!(!page.contains(SECRET));
    let api: Value = serde_json::from_str(&send(&app, get("/api/modules/broken", Some(&cookie))).await.body).unwrap();
    assert_eq!(api["health"]["status"], "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_page_policy_copies_and_gateway_metrics() {
    let f = fixture().await;
    f.add_local("disk-a").await;
    f.add_local("disk-b").await;
    let spool = csal_spool::SpoolConfig::new(f.dir.path().join("spool"), 1 << 30);
    let gateway = csal_spool::Gateway::start(f.catalog.clone(), csal_spool::GatewayConfig::new(spool)).await.unwrap();
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()).with_gateway(gateway.clone()));
    let (cookie, csrf) = login(&app).await;

    // A policy with two copies, through the form; too many copies is a field error.
    let form = [("csrf", csrf.as_str()), ("camera", "cam-7"), ("targets", "disk-a\ndisk-b"), ("copies", "3")];
    let r = send(&app, post_form("/policies", Some(&cookie), &form)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("3 copies"), "{}", r.body);
    let form = [("csrf", csrf.as_str()), ("camera", "cam-7"), ("targets", "disk-a\ndisk-b"), ("copies", "2")];
    let r = send(&app, post_form("/policies", Some(&cookie), &form)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(f.catalog.get_policy("cam-7").await.unwrap().copies, 2);

    // A recorder's upload, with an ingest token.
    let token = f.catalog.create_token("rec", csal_catalog::TokenScope::Ingest).await.unwrap();
    let put = Request::put("/v1/cameras/cam-7/segments/s1.ts?ack=copies")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("x-csal-duration", "2.5")
        .body(Body::from(vec![9u8; 4096]))
        .unwrap();
    let r = send(&app, put).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!((v["state"].as_str(), v["copies_stored"].as_u64()), (Some("delivered"), Some(2)));
    assert_eq!(v["crc32c"], format!("{:08x}", crc32c::crc32c(&[9u8; 4096])));

    // The pages and the JSON API (a session may read everything).
    let page = send(&app, get("/recordings", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("cam-7") && page.body.contains("id=\"spool\""), "{}", page.body);
    let cam = send(&app, get("/recordings/cam-7", Some(&cookie))).await;
    assert!(cam.body.contains("s1.ts"), "{}", cam.body);
    let bad = send(&app, get("/recordings/..%2Fx", Some(&cookie))).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let cams: Value = serde_json::from_str(&send(&app, get("/v1/cameras", Some(&cookie))).await.body).unwrap();
    assert_eq!(cams[0]["segments"], 1);
    let seg = send(&app, get("/v1/cameras/cam-7/segments/s1.ts", Some(&cookie))).await;
    assert_eq!((seg.status, seg.body.len()), (StatusCode::OK, 4096));

    // Prometheus: spool gauges, deliveries per target, per-camera lag.
    gateway.drain(std::time::Duration::from_secs(30)).await.expect("the spool empties");
    let m = send(&app, get("/metrics", Some(&cookie))).await.body;
    for line in [
        "csal_ingest_segments_total 1",
        "csal_deliveries_total{target=\"disk-a\"} 1",
        "csal_deliveries_total{target=\"disk-b\"} 1",
        "csal_camera_segments{camera=\"cam-7\"} 1",
        "csal_camera_undelivered_segments{camera=\"cam-7\"} 0",
    ] {
        assert!(m.lines().any(|l| l == line), "missing {line:?} in\n{m}");
    }
    assert!(m.contains("# TYPE csal_spool_bytes gauge"));
    gateway.shutdown().await;
}

// ----------------------------------------------------------------- sessions

#[tokio::test]
async fn a_session_is_valid_on_every_node_and_after_a_restart() {
    let f = fixture().await;
    let node1 = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, _) = login(&node1).await;
    // Another node (or this one restarted) on the same catalog.
    let other = f.reopen().await;
    let node2 = csal_admin::app(csal_admin::AdminState::new(other.clone()));
    assert_eq!(send(&node2, get("/modules", Some(&cookie))).await.status, StatusCode::OK);
    // Logging out on one node logs out everywhere.
    let page = send(&node2, get("/modules", Some(&cookie))).await;
    let r = send(&node2, post_form("/logout", Some(&cookie), &[("csrf", &csrf_in(&page.body))])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(send(&node1, get("/modules", Some(&cookie))).await.status, StatusCode::SEE_OTHER);
    other.close().await;
}

#[tokio::test]
async fn setting_the_password_ends_every_session() {
    let f = fixture().await;
    let node1 = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let other = f.reopen().await;
    let node2 = csal_admin::app(csal_admin::AdminState::new(other.clone()));
    let (a, _) = login(&node1).await;
    let (b, _) = login(&node2).await;
    // What `csal admin set-password` does, from a third process.
    let cli = f.reopen().await;
    csal_admin::auth::set_password(&cli, "a-brand-new-password").await.unwrap();
    for (node, cookie) in [(&node1, &a), (&node2, &b), (&node2, &a)] {
        let r = send(node, get("/modules", Some(cookie))).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "a session outlived the password change");
    }
    cli.close().await;
    other.close().await;
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_public_url_is_https() {
    let f = fixture().await;
    for (public_url, secure) in
        [(None, false), (Some("http://10.1.2.3:8080"), false), (Some("https://csal.example.com"), true)]
    {
        let state = csal_admin::AdminState::new(f.catalog.clone()).with_public_url(public_url.map(str::to_owned));
        let app = csal_admin::app(state);
        let page = send(&app, get("/login", None)).await;
        let pre = cookie_of(&page);
        let r = send(&app, post_form("/login", Some(&pre), &[("csrf", &csrf_in(&page.body)), ("password", PASSWORD)]))
            .await;
        for set in [&page, &r].map(|r| r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().to_owned()) {
            assert_eq!(set.contains("; Secure"), secure, "{public_url:?}: {set}");
        }
    }
}

#[tokio::test]
async fn two_nodes_starting_on_an_empty_catalog_set_one_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("empty.db").display());
    let key = csal_catalog::MasterKey::generate().unwrap();
    let open = || csal_catalog::Catalog::open(&url, csal_catalog::MasterKey::Explicit(key.clone()));
    let (a, b) = (open().await.unwrap(), open().await.unwrap());
    let (pa, pb) = tokio::join!(csal_admin::auth::ensure_password(&a), csal_admin::auth::ensure_password(&b));
    let winners: Vec<String> = [pa.unwrap(), pb.unwrap()].into_iter().flatten().collect();
    assert_eq!(winners.len(), 1, "both nodes announced a first-run password");
    assert!(csal_admin::auth::verify_password(&a, &winners[0]).await.unwrap(), "the announced password does not work");
    a.close().await;
    b.close().await;
}

/// A config edit rebuilds the module (as a token refresh does); its
/// operation metrics go on where they were, on the page, the JSON API and
/// `/metrics`. The module page's charts show the last hour once there is traffic.
#[tokio::test]
async fn metrics_survive_a_rebuild_and_the_module_page_charts_them() {
    let f = fixture().await;
    f.add_local("charted").await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, _) = login(&app).await;

    let page = send(&app, get("/modules/charted", Some(&cookie))).await.body;
    assert!(page.contains(r#"id="charts-empty""#), "no traffic yet: the empty state");
    assert!(!page.contains(r#"id="chart-latency""#));

    let router = f.catalog.router();
    let body = || csal_core::ByteStream::from_bytes(&b"0123456789"[..]);
    let first = router.write("charted", body(), csal_core::WriteMeta::new("a.ts")).await.unwrap();
    let before = router.module("charted").unwrap();
    f.catalog
        .update_module(
            "charted",
            csal_catalog::ModuleUpdate {
                config: Some(json!({"root": f.root("charted"), "min_free_mb": 2})),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let router = f.catalog.router();
    assert!(!std::sync::Arc::ptr_eq(&before, &router.module("charted").unwrap()), "the edit rebuilt the module");
    router.write("charted", body(), csal_core::WriteMeta::new("b.ts")).await.unwrap();
    router.read("charted", &first.object_id, None).await.unwrap().collect_limited(1024).await.unwrap();

    let m: Value =
        serde_json::from_str(&send(&app, get("/api/modules/charted/metrics", Some(&cookie))).await.body).unwrap();
    assert_eq!(m["operations"]["write"]["calls"], 2, "{m}");
    assert_eq!(m["bytes_written"], 20, "{m}");
    assert_eq!(m["bytes_read"], 10, "{m}");
    let prom = send(&app, get("/metrics", Some(&cookie))).await.body;
    assert!(
        prom.contains(r#"csal_operations_total{module="charted",provider="local_fs",operation="write"} 2"#),
        "{prom}"
    );

    let page = send(&app, get("/modules/charted", Some(&cookie))).await.body;
    assert!(!page.contains(r#"id="charts-empty""#), "{page}");
    for chart in ["chart-latency", "chart-bytes"] {
        let at = page.find(&format!(r#"<svg id="{chart}""#)).unwrap_or_else(|| panic!("{chart} missing: {page}"));
        let svg = &page[at..at + page[at..].find("</svg>").unwrap()];
        // Data drawn: a line with points, or bars.
        assert!(svg.contains("<circle ") || svg.contains("<rect x="), "{chart} has no data: {svg}");
    }
    // The page's one script is the shared file; the charts add none.
    assert!(page.split("<script").skip(1).all(|s| s.starts_with(" src=")), "charts need no inline script");
}

/// The start tag of the element with `id` (`<input ... id="x" ...>`).
fn tag_with_id<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no element #{id} in {html}"));
    let start = html[..at].rfind('<').unwrap();
    &html[start..at + html[at..].find('>').unwrap() + 1]
}

/// The text of the element with `id`, up to its first child or end tag.
fn text_of<'a>(html: &'a str, id: &str) -> &'a str {
    let tag = tag_with_id(html, id);
    let rest = &html[html.find(tag).unwrap() + tag.len()..];
    &rest[..rest.find('<').unwrap()]
}

#[tokio::test]
async fn a_field_error_is_announced_with_its_field_and_required_fields_say_so() {
    let f = fixture().await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, csrf) = login(&app).await;
    // The name's error is tied to it (a config field's:
    // bad_config_in_the_form_shows_the_field_error).
    f.add_local("disk").await;
    std::fs::create_dir(f.root("d2")).unwrap();
    let form = [("csrf", csrf.as_str()), ("provider_type", "local_fs"), ("name", "disk"), ("cfg.root", &f.root("d2"))];
    let r = send(&app, post_form("/modules/new", Some(&cookie), &form)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let name = tag_with_id(&r.body, "field-name");
    assert!(name.contains(r#"aria-invalid="true""#) && name.contains(r#"aria-describedby="error-name""#), "{name}");
    assert!(text_of(&r.body, "error-name").contains("already exists"), "{}", r.body);

    // Editing: a stored secret may stay empty, so it is not required there.
    f.catalog
        .create_module(csal_catalog::NewModule {
            name: "cloud".into(),
            label: None,
            provider_type: "test_s3".into(),
            is_enabled: true,
            config: json!({"bucket": "b", "access_key_id": "a", "secret_access_key": SECRET}),
        })
        .await
        .unwrap();
    let new = send(&app, get("/modules/new?provider=test_s3", Some(&cookie))).await;
    assert!(tag_with_id(&new.body, "field-secret_access_key").contains(" required"), "{}", new.body);
    let edit = send(&app, get("/modules/cloud/edit", Some(&cookie))).await;
    assert!(!tag_with_id(&edit.body, "field-secret_access_key").contains("required"), "{}", edit.body);
    assert!(tag_with_id(&edit.body, "field-bucket").contains(" required"), "{}", edit.body);

    // The login page's error is tied to the password field.
    let page = send(&app, get("/login", None)).await;
    assert!(!tag_with_id(&page.body, "password").contains("aria-invalid"));
    let pre = cookie_of(&page);
    let r = send(&app, post_form("/login", Some(&pre), &[("csrf", &csrf_in(&page.body)), ("password", "wrong")])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let password = tag_with_id(&r.body, "password");
    assert!(password.contains(r#"aria-invalid="true""#) && password.contains(r#"aria-describedby="login-error""#));
    assert!(text_of(&r.body, "login-error").contains("Wrong password"));
}

#[tokio::test]
async fn the_navigation_marks_the_current_section() {
    let f = fixture().await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, _) = login(&app).await;
    for (path, current) in [
        ("/modules", "/modules"),
        ("/modules/new", "/modules"),
        ("/policies", "/policies"),
        ("/recordings", "/recordings"),
    ] {
        let body = send(&app, get(path, Some(&cookie))).await.body;
        let nav = &body[body.find("<nav").unwrap()..body.find("</nav>").unwrap()];
        let links: Vec<&str> = nav.split("<a ").skip(1).map(|a| &a[..a.find('>').unwrap()]).collect();
        assert_eq!(links.len(), 3, "{nav}");
        for link in links {
            let is_current = link.contains(&format!("href=\"{current}\""));
            assert_eq!(link.contains(r#"aria-current="page""#), is_current, "{path}: {link}");
        }
    }
}

#[tokio::test]
async fn every_html_page_sends_the_csp_and_needs_nothing_it_forbids() {
    let f = fixture().await;
    f.add_local("disk").await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, csrf) = login(&app).await;
    let csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
    let gets = [
        "/login",
        "/modules",
        "/modules/new",
        "/modules/new?provider=local_fs",
        "/modules/disk",
        "/modules/disk/edit",
        "/modules/missing",
        "/policies",
        "/recordings",
        "/recordings/cam-1",
    ];
    let mut pages = Vec::new();
    for path in gets {
        let cookie = (path != "/login").then_some(cookie.as_str());
        pages.push((path, send(&app, get(path, cookie)).await));
    }
    let test = post_form("/modules/disk/test", Some(&cookie), &[("csrf", &csrf)]);
    pages.push(("/modules/disk/test", send(&app, test).await));
    let bad =
        post_form("/modules/new", Some(&cookie), &[("csrf", &csrf), ("provider_type", "local_fs"), ("name", "x")]);
    pages.push(("/modules/new (error)", send(&app, bad).await));
    let policy = post_form("/policies", Some(&cookie), &[("csrf", &csrf), ("camera", "c"), ("targets", "nope")]);
    pages.push(("/policies (error)", send(&app, policy).await));
    for (path, r) in &pages {
        let content_type = r.headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap();
        assert!(content_type.starts_with("text/html"), "{path}: {content_type}");
        assert_eq!(r.headers.get("content-security-policy").map(|v| v.to_str().unwrap()), Some(csp), "{path}");
        // What the policy would block: inline style, inline script, handlers.
        let lower = r.body.to_ascii_lowercase();
        assert!(!lower.contains("<style") && !lower.contains(" style="), "{path} has inline style");
        for script in lower.split("<script").skip(1) {
            assert!(script.starts_with(" src=\"/assets/") && script.contains("></script>"), "{path}: inline script");
        }
        for handler in [" onsubmit=", " onclick=", " onload=", " onchange=", " oninput="] {
            assert!(!lower.contains(handler), "{path} has an inline handler {handler}");
        }
    }
    // The stylesheet and script the pages load are served to anyone (the
    // login page needs them), with their own types.
    for (path, kind) in [("/assets/admin.css", "text/css"), ("/assets/admin.js", "text/javascript")] {
        let r = send(&app, get(path, None)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.headers.get(header::CONTENT_TYPE).unwrap().to_str().unwrap().starts_with(kind), "{path}");
        assert!(pages[0].1.body.contains(path), "the login page loads {path}");
    }
}
