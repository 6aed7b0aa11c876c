//! The Authorize button end to end, in process: log in, POST authorize
//! (CSRF), follow the redirect through the Google Drive fake's authorize
//! endpoint back to `/oauth/callback`, and the module works.

mod common;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{PASSWORD, fixture};
use csal_catalog::NewModule;
use csal_fakes::gdrive::FakeGoogleDrive;
use http_body_util::BodyExt;
use tower::ServiceExt;

csal_core::link_providers!(csal_gdrive);

const HOST: &str = "csal.test:8080";

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
    let mut b = Request::get(path).header(header::HOST, HOST);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

fn post_form(path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(serde_urlencoded::to_string(form).unwrap())).unwrap()
}

fn cookie_of(r: &Resp) -> String {
    let set = r.headers.get(header::SET_COOKIE).expect("a session cookie").to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The OAuth binding cookie an authorize answer sets (`name=value`).
fn binding_of(r: &Resp) -> String {
    let set = r
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("csal_oauth_binding="))
        .expect("a binding cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/oauth/callback"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

fn location(r: &Resp) -> String {
    r.headers.get(header::LOCATION).expect("a Location").to_str().unwrap().to_owned()
}

fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

async fn login(app: &axum::Router) -> (String, String) {
    let page = send(app, get("/login", None)).await;
    let pre = cookie_of(&page);
    let r = send(app, post_form("/login", Some(&pre), &[("csrf", &csrf_in(&page.body)), ("password", PASSWORD)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let cookie = cookie_of(&r);
    let modules = send(app, get("/modules", Some(&cookie))).await;
    (cookie, csrf_in(&modules.body))
}

async fn add_gdrive(f: &common::Fixture, fake: &FakeGoogleDrive) {
    f.catalog
        .create_module(NewModule {
            name: "gd".into(),
            label: None,
            provider_type: "gdrive".into(),
            is_enabled: true,
            config: serde_json::json!({
                "client_id": csal_fakes::gdrive::CLIENT_ID,
                "client_secret": csal_fakes::gdrive::CLIENT_SECRET,
                "api_url": fake.api_url(),
                "token_url": fake.token_url(),
            }),
        })
        .await
        .unwrap();
}

/// The provider's answer to the authorize URL (the fake consents at once):
/// where it sends the browser back to.
async fn provider_redirect(authorize_url: &str) -> String {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = client.get(authorize_url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "{authorize_url}");
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// `http://csal.test:8080/oauth/callback?...` → `/oauth/callback?...`.
fn local_path(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    assert_eq!(u.host_str(), Some("csal.test"));
    format!("{}?{}", u.path(), u.query().unwrap_or(""))
}

#[tokio::test(flavor = "multi_thread")]
async fn authorize_button_runs_the_flow_and_the_module_then_works() {
    let fake = FakeGoogleDrive::start().await;
    let f = fixture().await;
    add_gdrive(&f, &fake).await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, csrf) = login(&app).await;

    let page = send(&app, get("/modules/gd", Some(&cookie))).await;
    assert!(page.body.contains("not authorised") && page.body.contains("/modules/gd/authorize"), "{}", page.body);
    let before = f.catalog.router().test("gd").await;
    assert!(before.is_err_and(|e| e.message().contains("not authorised yet")));

    // Without the CSRF token: refused.
    let r = send(&app, post_form("/modules/gd/authorize", Some(&cookie), &[])).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = send(&app, post_form("/modules/gd/authorize", Some(&cookie), &[("csrf", &csrf)])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let to_provider = location(&r);
    assert!(to_provider.starts_with(&fake.authorize_url()), "{to_provider}");
    let q = query_of(&to_provider);
    assert_eq!(q["redirect_uri"], "http://csal.test:8080/oauth/callback");
    assert_eq!((q["access_type"].as_str(), q["prompt"].as_str()), ("offline", "consent"));
    assert_eq!(q["code_challenge_method"], "S256");

    // Back from the provider's site: no session cookie (SameSite=Strict),
    // only the Lax binding cookie of this browser.
    let binding = binding_of(&r);
    let back = provider_redirect(&to_provider).await;
    let cb = send(&app, get(&local_path(&back), Some(&binding))).await;
    assert_eq!(cb.status, StatusCode::OK, "{}", cb.body);
    assert!(cb.body.contains("is authorised") && cb.body.contains("Test: ok"), "{}", cb.body);
    assert!(cb.body.contains("href=\"/modules/gd\""));
    assert_eq!(fake.code_exchanges(), 1);

    // The module page shows the outcome once, and the module works.
    let page = send(&app, get("/modules/gd", Some(&cookie))).await;
    assert!(page.body.contains("id=\"authorize-result\""), "{}", page.body);
    assert!(page.body.contains("id=\"oauth-status\">authorised"), "{}", page.body);
    let again = send(&app, get("/modules/gd", Some(&cookie))).await;
    assert!(!again.body.contains("id=\"authorize-result\""));
    assert_eq!(f.catalog.router().test("gd").await.unwrap().status, csal_core::HealthStatus::Ok);
    // Saved in the catalog: a fresh router on the same database works too.
    let reopened = f.reopen().await;
    assert_eq!(reopened.router().test("gd").await.unwrap().status, csal_core::HealthStatus::Ok);

    // The state is single use: replaying the callback is refused.
    let replay = send(&app, get(&local_path(&back), Some(&binding))).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("Unknown or expired"), "{}", replay.body);
    assert_eq!(fake.code_exchanges(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn refusal_at_the_provider_is_shown_and_nothing_is_saved() {
    let fake = FakeGoogleDrive::start().await;
    fake.deny_authorization(true);
    let f = fixture().await;
    add_gdrive(&f, &fake).await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, csrf) = login(&app).await;
    let r = send(&app, post_form("/modules/gd/authorize", Some(&cookie), &[("csrf", &csrf)])).await;
    let back = provider_redirect(&location(&r)).await;
    assert_eq!(query_of(&back)["error"], "access_denied");
    let cb = send(&app, get(&local_path(&back), Some(&format!("{cookie}; {}", binding_of(&r))))).await;
    assert_eq!(cb.status, StatusCode::BAD_REQUEST);
    assert!(cb.body.contains("access_denied") && cb.body.contains("refused"), "{}", cb.body);
    let page = send(&app, get("/modules/gd", Some(&cookie))).await;
    assert!(page.body.contains("Authorization failed") && page.body.contains("not authorised"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_with_a_forged_state_or_from_another_browser_is_rejected() {
    let fake = FakeGoogleDrive::start().await;
    let f = fixture().await;
    add_gdrive(&f, &fake).await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, csrf) = login(&app).await;
    let r = send(&app, post_form("/modules/gd/authorize", Some(&cookie), &[("csrf", &csrf)])).await;
    let binding = binding_of(&r);
    let back = provider_redirect(&location(&r)).await;
    let code = query_of(&back)["code"].clone();

    let forged = send(&app, get(&format!("/oauth/callback?code={code}&state=forged"), Some(&binding))).await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    assert!(forged.body.contains("Unknown or expired"));

    // The state leaked (a log, a referrer): a browser without the binding
    // cookie, or another logged-in session, cannot complete it.
    for other in [None, Some(login(&app).await.0), Some("csal_oauth_binding=guessed".to_owned())] {
        let cb = send(&app, get(&local_path(&back), other.as_deref())).await;
        assert_eq!(cb.status, StatusCode::BAD_REQUEST, "{other:?}");
        assert!(cb.body.contains("another browser"), "{}", cb.body);
    }
    assert_eq!(fake.code_exchanges(), 0);
    assert!(f.catalog.router().test("gd").await.is_err());

    // The browser that started it still can.
    let cb = send(&app, get(&local_path(&back), Some(&binding))).await;
    assert_eq!(cb.status, StatusCode::OK, "{}", cb.body);
    assert_eq!(fake.code_exchanges(), 1);
}

#[tokio::test]
async fn redirect_uri_comes_from_the_public_url_when_configured() {
    let fake = FakeGoogleDrive::start().await;
    let f = fixture().await;
    add_gdrive(&f, &fake).await;
    let state =
        csal_admin::AdminState::new(f.catalog.clone()).with_public_url(Some("https://csal.example.com/".to_owned()));
    let app = csal_admin::app(state);
    let (cookie, csrf) = login(&app).await;
    let r = send(&app, post_form("/modules/gd/authorize", Some(&cookie), &[("csrf", &csrf)])).await;
    assert_eq!(query_of(&location(&r))["redirect_uri"], "https://csal.example.com/oauth/callback");
}

#[tokio::test]
async fn modules_without_oauth_have_no_authorize_button() {
    let f = fixture().await;
    f.add_local("plain").await;
    let app = csal_admin::app(csal_admin::AdminState::new(f.catalog.clone()));
    let (cookie, csrf) = login(&app).await;
    let page = send(&app, get("/modules/plain", Some(&cookie))).await;
    assert!(!page.body.contains("/authorize"));
    let r = send(&app, post_form("/modules/plain/authorize", Some(&cookie), &[("csrf", &csrf)])).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("does not use OAuth"));
}
