//! The Authorize button: the provider's OAuth authorization-code flow with
//! the admin's own `/oauth/callback` as redirect URI.
//!
//! `POST /modules/{name}/authorize` (session + CSRF) starts a flow: a
//! random state and PKCE verifier, kept server-side with the session and
//! the instance they belong to, and a 303 to the provider that also sets a
//! binding cookie ([`BINDING_COOKIE`]: random, HttpOnly, `SameSite=Lax`,
//! path `/oauth/callback`, ten minutes). The provider sends the browser
//! back to `GET /oauth/callback?code&state`. That route is outside the
//! login check on purpose: the session cookie is `SameSite=Strict`, so a
//! browser coming back from the provider's site does not send it; the Lax
//! binding cookie is sent on that top-level redirect. The callback
//! completes only for the unguessable, single-use, ten-minute state *and*
//! the binding cookie of the browser that started it, so a leaked state (in
//! a log or a referrer) cannot be completed from another browser with
//! someone else's authorization code. The callback
//! exchanges the code, saves the tokens through the catalog (encrypted),
//! tests the instance, and leaves a flash message for the session, shown on
//! the module page the callback page links to.
//!
//! The redirect URI is `{public_url}/oauth/callback` when the admin was
//! started with a public URL, else `http://{Host}/oauth/callback`; it must
//! be registered with the provider's app.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use csal_catalog::{Catalog, ModuleRecord};
use csal_core::{HealthStatus, StorageError};
use csal_oauth::{OAuthClient, PendingAuthorization, find_spec};
use maud::html;

use crate::AdminState;
use crate::auth::{self, Caller};
use crate::views::{page, seg};

/// How long a started authorization waits for its callback.
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// The cookie that ties a flow to the browser that started it.
pub const BINDING_COOKIE: &str = "csal_oauth_binding";
/// Flows kept at most (older ones are dropped first).
const MAX_FLOWS: usize = 1000;

struct Flow {
    /// The binding cookie's value the callback must bring.
    binding: String,
    session: Option<String>,
    instance_id: String,
    instance: String,
    pending: PendingAuthorization,
    started: Instant,
}

/// Why a callback is not completed.
enum Refused {
    UnknownState,
    OtherBrowser,
}

/// The binding cookie's `Set-Cookie` value (`None`: clear it).
fn binding_cookie(value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let (value, age) = match value {
        Some(v) => (v, FLOW_TTL.as_secs()),
        None => ("", 0),
    };
    format!("{BINDING_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/oauth/callback; Max-Age={age}{secure}")
}

fn binding_of(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == BINDING_COOKIE && !v.is_empty()).then(|| v.to_owned())
    })
}

/// A message left for a session about an instance: (instance, ok, text).
type Flash = (String, bool, String);

/// Started flows by state, and flash messages by session id.
#[derive(Clone, Default)]
pub struct OAuthFlows {
    flows: Arc<Mutex<HashMap<String, Flow>>>,
    flashes: Arc<Mutex<HashMap<String, Flash>>>,
}

impl OAuthFlows {
    fn insert(&self, flow: Flow) {
        let mut flows = self.flows.lock().expect("flows lock");
        flows.retain(|_, f| f.started.elapsed() < FLOW_TTL);
        if flows.len() >= MAX_FLOWS
            && let Some(oldest) = flows.iter().min_by_key(|(_, f)| f.started).map(|(k, _)| k.clone())
        {
            flows.remove(&oldest);
        }
        flows.insert(flow.pending.state().to_owned(), flow);
    }

    /// The flow of `state` for the browser holding `binding`, removed
    /// (single use). A wrong binding leaves the flow for its own browser.
    fn take(&self, state: &str, binding: Option<&str>) -> Result<Flow, Refused> {
        let mut flows = self.flows.lock().expect("flows lock");
        let key = flows.keys().find(|k| auth::constant_time_eq(k, state)).cloned().ok_or(Refused::UnknownState)?;
        let flow = flows.get(&key).expect("found above");
        if flow.started.elapsed() >= FLOW_TTL {
            flows.remove(&key);
            return Err(Refused::UnknownState);
        }
        if !binding.is_some_and(|b| auth::constant_time_eq(b, &flow.binding)) {
            return Err(Refused::OtherBrowser);
        }
        Ok(flows.remove(&key).expect("found above"))
    }

    /// How many flows wait for their callback.
    pub fn pending(&self) -> usize {
        self.flows.lock().expect("flows lock").len()
    }

    fn set_flash(&self, session: &str, instance: &str, ok: bool, message: String) {
        self.flashes.lock().expect("flashes lock").insert(session.to_owned(), (instance.to_owned(), ok, message));
    }

    /// The flash message left for `session` about `instance`, taken.
    pub fn take_flash(&self, session: &str, instance: &str) -> Option<(bool, String)> {
        let mut flashes = self.flashes.lock().expect("flashes lock");
        match flashes.get(session) {
            Some((i, _, _)) if i == instance => flashes.remove(session).map(|(_, ok, m)| (ok, m)),
            _ => None,
        }
    }
}

/// An instance's OAuth client: its provider's registered spec and its
/// config in clear (from the catalog's definitions). Shared with
/// `csal module authorize`.
pub async fn oauth_client(cat: &Catalog, name: &str) -> Result<(ModuleRecord, OAuthClient), StorageError> {
    let rec = cat.get_module(name).await?;
    let spec = find_spec(&rec.provider_type).ok_or_else(|| {
        StorageError::invalid_input(format!(
            "module '{}' ({}) does not use OAuth: there is nothing to authorise",
            rec.name, rec.provider_type
        ))
    })?;
    let def = cat
        .definitions()
        .await?
        .into_iter()
        .find(|d| d.id == rec.id)
        .ok_or_else(|| StorageError::not_found(format!("module '{name}' was removed meanwhile")))?;
    if let Some((kind, reason)) = def.load_error {
        return Err(StorageError::new(kind, reason).with_instance(rec.name.clone()));
    }
    let config: serde_json::Value = serde_json::from_str(&def.config_json)
        .map_err(|_| StorageError::invalid_config(format!("stored config of '{}' is not JSON", rec.name)))?;
    let client = OAuthClient::from_config(spec, &config).map_err(|e| e.with_instance(rec.name.clone()))?;
    Ok((rec, client))
}

/// Exchange the code of a finished redirect, save the tokens, test the
/// instance. The message says what happened (no secret in it).
pub async fn complete(
    cat: &Catalog,
    instance_id: &str,
    instance: &str,
    pending: &PendingAuthorization,
    params: &HashMap<String, String>,
) -> Result<String, StorageError> {
    let tokens = pending.finish(params).await.map_err(|e| e.with_instance(instance.to_owned()))?;
    cat.save_config_changes(instance_id, pending.client().config_changes(&tokens)).await?;
    let expiry = tokens
        .refresh_token_expires_at
        .map(|t| format!(" The refresh token expires at {}.", humantime::format_rfc3339_seconds(t)))
        .unwrap_or_default();
    let test = match cat.router().test(instance).await {
        Ok(r) if r.status == HealthStatus::Ok => "Test: ok.".to_owned(),
        Ok(r) => format!("Test: {}{}.", r.status.as_str(), r.last_error.map(|e| format!(" ({e})")).unwrap_or_default()),
        Err(e) => format!("Test failed: {e}."),
    };
    Ok(format!("Module '{instance}' is authorised; its tokens are saved (encrypted).{expiry} {test}"))
}

/// The redirect URI of this admin server.
pub fn redirect_uri(public_url: Option<&str>, headers: &HeaderMap) -> Result<String, StorageError> {
    let base = match public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '@']))
                .ok_or_else(|| {
                    StorageError::invalid_input(
                        "the request has no usable Host header: start the admin with --public-url",
                    )
                })?;
            format!("http://{host}")
        }
    };
    Ok(format!("{base}/oauth/callback"))
}

/// `POST /modules/{name}/authorize`.
pub async fn start(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let started = async {
        let (rec, client) = oauth_client(&state.catalog, &name).await?;
        let redirect = redirect_uri(state.public_url.as_deref(), &headers)?;
        let pending = client.start(&redirect)?;
        Ok::<_, StorageError>((rec, pending))
    }
    .await;
    match started {
        Ok((rec, pending)) => {
            let url = pending.authorize_url().to_owned();
            let session = match &caller {
                Caller::Session { id, .. } => Some(id.clone()),
                Caller::Token { .. } => None,
            };
            let binding = auth::random_token(24);
            state.oauth.insert(Flow {
                binding: binding.clone(),
                session,
                instance_id: rec.id,
                instance: rec.name,
                pending,
                started: Instant::now(),
            });
            let cookie = binding_cookie(Some(&binding), state.secure_cookies());
            ([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response()
        }
        Err(e) => {
            let body = html! {
                h1 { "Cannot authorise " code { (name) } }
                div class="flash bad" id="authorize-result" { (e.to_string()) }
                a href={ "/modules/" (seg(&name)) } { "Back to the module" }
            };
            (crate::status::status_for(&e), page("Authorize", "modules", caller.csrf(), body)).into_response()
        }
    }
}

/// `GET /oauth/callback?code&state` (or `?error&state`).
pub async fn callback(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let binding = binding_of(&headers);
    let flow = match params.get("state").map(|s| state.oauth.take(s, binding.as_deref())) {
        Some(Ok(flow)) => flow,
        None | Some(Err(Refused::UnknownState)) => {
            return result_page(
                StatusCode::BAD_REQUEST,
                None,
                false,
                "Unknown or expired authorization request (the state does not match one this server started in \
                 the last 10 minutes). Start again with the Authorize button.",
            );
        }
        Some(Err(Refused::OtherBrowser)) => {
            tracing::warn!("OAuth callback refused: it came from a browser that did not start the authorization");
            return result_page(
                StatusCode::BAD_REQUEST,
                None,
                false,
                "This authorization was started in another browser (its binding cookie is missing or different). \
                 Start again with the Authorize button in the browser that will sign in at the provider.",
            );
        }
    };
    let outcome = complete(&state.catalog, &flow.instance_id, &flow.instance, &flow.pending, &params).await;
    let (status, ok, message) = match outcome {
        Ok(m) => (StatusCode::OK, true, m),
        Err(e) => (StatusCode::BAD_REQUEST, false, format!("Authorization failed: {e}")),
    };
    if let Some(session) = &flow.session {
        state.oauth.set_flash(session, &flow.instance, ok, message.clone());
    }
    let mut resp = result_page(status, Some(&flow.instance), ok, &message);
    if let Ok(v) = binding_cookie(None, state.secure_cookies()).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The page the browser lands on: the outcome, and a same-site link (and
/// refresh) to the module page, where the session cookie is sent again.
fn result_page(status: StatusCode, instance: Option<&str>, ok: bool, message: &str) -> Response {
    let target = instance.map(|i| format!("/modules/{}", seg(i))).unwrap_or_else(|| "/modules".to_owned());
    let body = html! {
        h1 { (if ok { "Authorised" } else { "Authorization failed" }) }
        div class={ "flash " (if ok { "ok" } else { "bad" }) } id="authorize-result" { (message) }
        a id="continue" href=(target) { "Continue to the module" }
    };
    let mut resp = (status, page("Authorize", "modules", "", body)).into_response();
    if let Ok(v) = format!("2; url={target}").parse() {
        resp.headers_mut().insert("refresh", v);
    }
    resp
}

/// What the module page says about an OAuth instance's authorisation
/// (`None`: the provider does not use OAuth).
pub fn status_line(provider_type: &str, masked_config: Option<&serde_json::Value>) -> Option<String> {
    let spec = find_spec(provider_type)?;
    let config = masked_config.cloned().unwrap_or_default();
    let has = |k: &str| config.get(k).is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()));
    if spec.not_with_keys.iter().any(|k| has(k)) {
        return None;
    }
    if !has("refresh_token") && !has("access_token") {
        return Some("not authorised: use Authorize to sign in at the provider".to_owned());
    }
    if let Some(at) = config.get(csal_oauth::REFRESH_TOKEN_EXPIRES_AT).and_then(|v| v.as_str()) {
        return Some(format!("authorised; the refresh token expires {at}"));
    }
    if !has("refresh_token") {
        return Some("access token only (no refresh token): authorise again before it expires".to_owned());
    }
    Some("authorised".to_owned())
}
