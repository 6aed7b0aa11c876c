//! The HTML pages: login, Module Manager, module forms, camera policies.

use std::time::Instant;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use csal_catalog::{ModuleUpdate, NewModule};
use csal_core::{
    ErrorKind, HealthReport, InstanceInfo, ProviderRegistration, StorageError, find_provider, registered_providers,
};
use maud::{Markup, html};

use crate::AdminState;
use crate::auth::{self, Caller};
use crate::forms::{self, FormState};
use crate::status::{status_for, status_of};
use crate::throttle::{ClientAddr, ClientKey, Refusal, VERIFICATION_QUEUE_WAIT};
use crate::views::{self, badge, csrf_input, page, post_button, seg};

type Fields = axum::Form<Vec<(String, String)>>;

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn error_page(caller: &Caller, err: &StorageError) -> Response {
    let body = html! {
        h1 { "Something went wrong" }
        div class="flash bad" { (err.to_string()) }
        a href="/modules" { "Back to the Module Manager" }
    };
    (status_for(err), page("Error", "", caller.csrf(), body)).into_response()
}

// ---------------------------------------------------------------- login

fn login_page(csrf: &str, error: Option<&str>) -> Markup {
    let body = html! {
        div class="card login" {
            h1 { "Log in" }
            @if let Some(e) = error { div class="flash bad" id="login-error" { (e) } }
            form method="post" action="/login" {
                (csrf_input(csrf))
                div class="field" {
                    label for="password" { "Admin password" }
                    input type="password" id="password" name="password" autofocus autocomplete="current-password" required
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "login-error")];
                }
                button type="submit" id="login" { "Log in" }
            }
            p class="muted" { "Forgot it? Run " code { "csal admin set-password" } " on the server." }
        }
    };
    page("Log in", "", "", body)
}

/// `GET /login`: the login form (a logged-in browser goes to the modules).
pub async fn login_form(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    if let Some(id) = auth::session_id(&headers)
        && let Some(s) = state.sessions.get(&id).await
    {
        if s.authenticated {
            return Redirect::to("/modules").into_response();
        }
        return login_page(&s.csrf, None).into_response();
    }
    match state.sessions.create(false, None).await {
        Ok((id, session)) => (
            [(header::SET_COOKIE, auth::session_cookie(Some(&id), state.secure_cookies()))],
            login_page(&session.csrf, None),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, login_page("", Some(&e.to_string()))).into_response(),
    }
}

/// A refused login: the status, an optional Retry-After and the page.
fn login_refused(status: StatusCode, retry_after: Option<u64>, csrf: &str, message: &str) -> Response {
    let mut resp = (status, login_page(csrf, Some(message))).into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    resp
}

/// `POST /login`: check the password (throttled per client) and start a session.
pub async fn login(
    State(state): State<AdminState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    fields: Fields,
) -> Response {
    let pre = match auth::session_id(&headers) {
        Some(id) => state.sessions.get(&id).await.map(|s| (id, s)),
        None => None,
    };
    let Some((pre_id, pre_session)) = pre else {
        return (StatusCode::FORBIDDEN, "session expired: reload the login page").into_response();
    };
    let csrf = pre_session.csrf.as_str();
    if !field(&fields, "csrf").is_some_and(|v| auth::constant_time_eq(v, csrf)) {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token: reload the login page").into_response();
    }
    // Reserve this client's attempt before the password is checked, so a
    // concurrent burst cannot slip past the lockout.
    let attempt = match state.login_throttle.begin(ClientKey::of(client), Instant::now()) {
        Ok(a) => a,
        Err(Refusal::LockedOut(wait)) => {
            let secs = wait.as_secs().max(1);
            let message = format!("Too many wrong passwords: try again in {secs} s.");
            return login_refused(StatusCode::TOO_MANY_REQUESTS, Some(secs), csrf, &message);
        }
        Err(Refusal::InFlight) => {
            let message = "Another login from your address is being checked: try again in a moment.";
            return login_refused(StatusCode::TOO_MANY_REQUESTS, Some(1), csrf, message);
        }
    };
    let Some(permit) = attempt.permit(VERIFICATION_QUEUE_WAIT).await else {
        let message = "The server is busy checking other logins: try again in a moment.";
        return login_refused(StatusCode::SERVICE_UNAVAILABLE, Some(1), csrf, message);
    };
    let checked = async {
        // Read before the check: a password change meanwhile voids the session.
        let epoch = state.catalog.session_epoch().await?;
        let ok = auth::verify_password(&state.catalog, field(&fields, "password").unwrap_or("")).await?;
        Ok::<_, csal_core::StorageError>((epoch, ok))
    }
    .await;
    drop(permit);
    match checked {
        Ok((epoch, true)) => {
            attempt.succeeded();
            state.sessions.remove(&pre_id).await;
            match state.sessions.create(true, Some(epoch)).await {
                Ok((id, _)) => (
                    [(header::SET_COOKIE, auth::session_cookie(Some(&id), state.secure_cookies()))],
                    Redirect::to("/modules"),
                )
                    .into_response(),
                Err(e) => login_refused(StatusCode::SERVICE_UNAVAILABLE, None, csrf, &e.to_string()),
            }
        }
        Ok((_, false)) => {
            attempt.failed(Instant::now());
            tracing::warn!(client = ?client, "admin login failed: wrong password");
            login_refused(StatusCode::UNAUTHORIZED, None, csrf, "Wrong password.")
        }
        Err(e) => login_refused(StatusCode::INTERNAL_SERVER_ERROR, None, csrf, &e.to_string()),
    }
}

/// `POST /logout`: end the session.
pub async fn logout(State(state): State<AdminState>, Extension(caller): Extension<Caller>) -> Response {
    if let Caller::Session { id, .. } = &caller {
        state.sessions.remove(id).await;
    }
    ([(header::SET_COOKIE, auth::session_cookie(None, state.secure_cookies()))], Redirect::to("/login")).into_response()
}

/// `GET /`: to the Module Manager.
pub async fn index() -> Redirect {
    Redirect::to("/modules")
}

// ---------------------------------------------------------------- module list

/// `GET /modules`: the Module Manager.
pub async fn modules(State(state): State<AdminState>, Extension(caller): Extension<Caller>) -> Response {
    modules_page(&state, &caller, None).into_response()
}

fn modules_page(state: &AdminState, caller: &Caller, flash: Option<(bool, String)>) -> Markup {
    let csrf = caller.csrf();
    let instances = state.catalog.router().instances();
    let body = html! {
        div class="actions title" {
            h1 { "Storage modules" }
            a class="btn" href="/modules/new" id="add-module" { "Add module" }
        }
        @if let Some((ok, msg)) = flash { div class={ "flash " (if ok { "ok" } else { "bad" }) } { (msg) } }
        @if instances.is_empty() {
            div class="card" { "No storage modules yet. " a href="/modules/new" { "Add one." } }
        } @else {
            table id="modules" {
                thead { tr { th { "Name" } th { "Label" } th { "Provider" } th { "Enabled" } th { "Status" } th { "Latency" } th { "Actions" } } }
                tbody {
                    @for i in &instances {
                        @let st = status_of(i);
                        tr id={ "module-" (i.name) } {
                            td { a href={ "/modules/" (seg(&i.name)) } { (i.name) } }
                            td { (i.label.clone().unwrap_or_default()) }
                            td { code { (i.provider_type) } }
                            td class="enabled" { (if i.is_enabled { "yes" } else { "no" }) }
                            td class="status" {
                                (badge(st.status))
                                @if let Some(r) = &st.reason { div class="reason" { (r) } }
                            }
                            td class="num" { (views::ms(st.latency_ms)) }
                            td { div class="actions" {
                                (post_button(&format!("/modules/{}/test", seg(&i.name)), csrf, "Test", "small"))
                                @if i.is_enabled {
                                    (post_button(&format!("/modules/{}/disable", seg(&i.name)), csrf, "Disable", "small secondary"))
                                } @else {
                                    (post_button(&format!("/modules/{}/enable", seg(&i.name)), csrf, "Enable", "small secondary"))
                                }
                                a class="btn small secondary" href={ "/modules/" (seg(&i.name)) "/edit" } { "Edit" }
                            } }
                        }
                    }
                }
            }
            p class="muted" { "Status comes from the last health check (run at start, every minute, and by Test)." }
        }
    };
    page("Modules", "modules", csrf, body)
}

// ---------------------------------------------------------------- detail

/// `GET /modules/{name}`: one module: status, actions, config (secrets masked), metrics.
pub async fn module_detail(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    let flash = match &caller {
        Caller::Session { id, .. } => state.oauth.take_flash(id, &name),
        Caller::Token { .. } => None,
    };
    match find_info(&state, &name) {
        Ok(info) => {
            let extras = ModuleExtras::of(&state, &info.name).await;
            detail_page(&info, &caller, None, flash, &extras).into_response()
        }
        Err(e) => error_page(&caller, &e),
    }
}

fn find_info(state: &AdminState, name: &str) -> Result<InstanceInfo, StorageError> {
    state
        .catalog
        .router()
        .instances()
        .into_iter()
        .find(|i| i.name == name || i.id == name)
        .ok_or_else(|| StorageError::not_found(format!("no storage module named '{name}'")))
}

async fn detail_response(
    state: &AdminState,
    caller: &Caller,
    name: &str,
    test: Option<Result<HealthReport, StorageError>>,
) -> Response {
    match find_info(state, name) {
        Ok(info) => {
            let extras = ModuleExtras::of(state, &info.name).await;
            detail_page(&info, caller, test, None, &extras).into_response()
        }
        Err(e) => error_page(caller, &e),
    }
}

/// What the module page shows beyond the router's view of the instance
/// (kept in catalog settings).
struct ModuleExtras {
    canary: bool,
    /// The module's upload limit or schedule, and the node-wide one.
    bwlimit: Option<String>,
    node_bwlimit: Option<String>,
    /// Operation totals (kept by module name, across rebuilds) and the last hour per minute.
    metrics: Option<crate::module_stats::MetricsSnapshot>,
    history: Vec<crate::module_stats::MinuteStats>,
}

impl ModuleExtras {
    async fn of(state: &AdminState, name: &str) -> Self {
        let catalog = &state.catalog;
        ModuleExtras {
            canary: catalog.canary_enabled(name).await.unwrap_or(false),
            bwlimit: catalog.bandwidth(name).await.ok().flatten(),
            node_bwlimit: catalog.bandwidth(csal_catalog::NODE_LIMIT).await.ok().flatten(),
            metrics: state.metrics.snapshot(name),
            history: state.metrics.history(name),
        }
    }
}

fn detail_page(
    info: &InstanceInfo,
    caller: &Caller,
    test: Option<Result<HealthReport, StorageError>>,
    flash: Option<(bool, String)>,
    extras: &ModuleExtras,
) -> Markup {
    let csrf = caller.csrf();
    let st = status_of(info);
    let base = format!("/modules/{}", seg(&info.name));
    let oauth = crate::oauth::status_line(&info.provider_type, info.masked_config.as_ref());
    let body = html! {
        h1 { "Module " code { (info.name) } }
        @if let Some((ok, message)) = &flash {
            div class={ "flash " (if *ok { "ok" } else { "bad" }) } id="authorize-result" { (message) }
        }
        @if let Some(result) = &test {
            @match result {
                Ok(h) => {
                    div class={ "flash " (if h.status == csal_core::HealthStatus::Ok { "ok" } else { "bad" }) } id="test-result" data-status=(h.status.as_str()) {
                        "Test: " strong { (h.status.as_str()) }
                        @if let Some(l) = h.latency { " (" (views::ms(Some(l.as_secs_f64() * 1000.0))) ")" }
                        @if let Some(e) = &h.last_error { " — " (e) }
                    }
                }
                Err(e) => {
                    div class="flash bad" id="test-result" data-status="error" { "Test failed: " (e.to_string()) }
                }
            }
        }
        div class="card" {
            div class="actions spaced" {
                (post_button(&format!("{base}/test"), csrf, "Test", "" ))
                @if oauth.is_some() {
                    (post_button(&format!("{base}/authorize"), csrf, "Authorize", "secondary"))
                }
                @if info.is_enabled {
                    (post_button(&format!("{base}/disable"), csrf, "Disable", "secondary"))
                } @else {
                    (post_button(&format!("{base}/enable"), csrf, "Enable", "secondary"))
                }
                a class="btn secondary" href={ (base) "/edit" } { "Edit" }
                form class="inline" method="post" action={ (base) "/delete" } data-confirm="Delete this module from the catalog? Stored objects are not touched." {
                    (csrf_input(csrf))
                    button type="submit" class="danger" { "Delete" }
                }
            }
            dl class="kv" {
                dt { "Id" } dd { code { (info.id) } }
                dt { "Label" } dd { (info.label.clone().unwrap_or_default()) }
                dt { "Provider" } dd { code { (info.provider_type) } }
                @if let Some(caps) = &info.capabilities {
                    dt { "Immutability" } dd id="immutability" {
                        @if caps.legal_hold {
                            "server-side: camera holds become the provider's legal holds, and it refuses to delete held or retained objects"
                        } @else {
                            "none on the server (CSAL's own holds still apply)"
                        }
                    }
                }
                dt { "Enabled" } dd { (if info.is_enabled { "yes" } else { "no" }) }
                dt { "Status" } dd id="status" { (badge(st.status)) @if let Some(r) = &st.reason { div class="reason" { (r) } } }
                dt { "Latency" } dd { (views::ms(st.latency_ms)) }
                dt { "Upload limit" } dd id="bwlimit" {
                    (extras.bwlimit.as_deref().unwrap_or("none"))
                    @if let Some(node) = &extras.node_bwlimit { " (all uploads of each node: " (node) ")" }
                    span class="muted" { " set with " code { "csal bwlimit" } }
                }
                dt { "Canary" } dd id="canary" {
                    @if extras.canary {
                        "on: each health check writes, reads back and deletes a small object "
                        (post_button(&format!("{base}/canary/off"), csrf, "Turn off", "small secondary"))
                    } @else {
                        "off "
                        (post_button(&format!("{base}/canary/on"), csrf, "Turn on", "small secondary"))
                    }
                }
                @if let Some(line) = info.last_health.as_ref().and_then(views::capacity_line) {
                    dt { "Capacity" } dd id="capacity" { (line) }
                }
                @if let Some(h) = info.last_health.as_ref().filter(|h| !h.details.is_empty()) {
                    dt { "Health details" } dd id="health-details" {
                        @for (key, value) in &h.details {
                            code { (key) } " " (views::detail_value(key, value)) br;
                        }
                    }
                }
                @if let Some(line) = &oauth {
                    dt { "OAuth" } dd id="oauth-status" { (line) }
                }
            }
        }
        h2 { "Configuration" }
        div class="card" {
            @match &info.masked_config {
                Some(serde_json::Value::Object(map)) if !map.is_empty() => {
                    dl class="kv" {
                        @for (k, v) in map {
                            dt { (k) } dd { code { (match v { serde_json::Value::String(s) => s.clone(), o => o.to_string() }) } }
                        }
                    }
                }
                _ => { span class="muted" { "No configuration to show." } }
            }
        }
        h2 { "Metrics" }
        div class="card" {
            @match &extras.metrics {
                None => { span class="muted" { "No operations yet." } }
                Some(m) => {
                    dl class="kv spaced" {
                        dt { "Bytes in (written)" } dd id="bytes-in" { (views::bytes(m.bytes_written)) }
                        dt { "Bytes out (read)" } dd id="bytes-out" { (views::bytes(m.bytes_read)) }
                        dt { "Retries" } dd { (m.retries) }
                        dt { "Errors by kind" } dd {
                            @if m.errors_by_kind.is_empty() { "none" }
                            @for (k, n) in &m.errors_by_kind { code { (k) } " " (n) " " }
                        }
                    }
                    @if m.operations.is_empty() {
                        span class="muted" { "No operations yet." }
                    } @else {
                        table id="metrics" {
                            thead { tr { th { "Operation" } th { "Calls" } th { "Errors" } th { "p50" } th { "p99" } } }
                            tbody {
                                @for (op, s) in &m.operations {
                                    tr { td { (op) } td class="num" { (s.calls) } td class="num" { (s.errors) } td class="num" { "≤ " (views::ms(Some(s.p50_ms))) } td class="num" { "≤ " (views::ms(Some(s.p99_ms))) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Last hour" }
        div class="card" id="charts" { (crate::charts::module_charts(&extras.history)) }
    };
    page(&info.name, "modules", csrf, body)
}

// ---------------------------------------------------------------- add / edit

/// Query of `GET /modules/new`.
#[derive(serde::Deserialize)]
pub struct NewQuery {
    provider: Option<String>,
}

/// `GET /modules/new`: the provider picker, or the form of `?provider=`.
pub async fn new_module(Extension(caller): Extension<Caller>, Query(q): Query<NewQuery>) -> Response {
    let csrf = caller.csrf();
    match q.provider.as_deref().filter(|p| !p.is_empty()) {
        None => provider_picker(csrf).into_response(),
        Some(p) => match find_provider(p) {
            Ok(reg) => module_form(csrf, reg, &FormState::defaults(reg), None).into_response(),
            Err(e) => error_page(&caller, &e),
        },
    }
}

fn provider_picker(csrf: &str) -> Markup {
    let providers = registered_providers();
    let body = html! {
        h1 { "Add a storage module" }
        div class="card" {
            form method="get" action="/modules/new" {
                div class="field" {
                    label for="provider" { "Provider" }
                    select id="provider" name="provider" {
                        @for r in &providers {
                            option value=(r.provider_type) { (r.display_name) " (" (r.provider_type) ")" }
                        }
                    }
                }
                button type="submit" id="choose-provider" { "Next" }
            }
        }
        table {
            thead { tr { th { "Type" } th { "Provider" } th { "Category" } th { "Description" } } }
            tbody {
                @for r in &providers {
                    tr {
                        td { a href={ "/modules/new?provider=" (seg(r.provider_type)) } { code { (r.provider_type) } } }
                        td { (r.display_name) }
                        td { (serde_json::to_value(r.category).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) }
                        td class="muted" { (r.description) }
                    }
                }
            }
        }
    };
    page("Add module", "modules", csrf, body)
}

/// The add (`editing = None`) or edit (`Some(name)`) form.
fn module_form(csrf: &str, reg: &ProviderRegistration, state: &FormState, editing: Option<&str>) -> Markup {
    let action = match editing {
        Some(name) => format!("/modules/{}/edit", seg(name)),
        None => "/modules/new".to_owned(),
    };
    let title = match editing {
        Some(name) => format!("Edit module {name}"),
        None => format!("Add a {} module", reg.display_name),
    };
    let body = html! {
        h1 { (title) }
        p class="muted" { (reg.description) }
        @if let Some(e) = &state.general_error { div class="flash bad" id="form-error" { (e) } }
        @if state.has_errors() && state.general_error.is_none() { div class="flash bad" id="form-error" { "Please fix the fields marked below." } }
        form class="card" method="post" action=(action) id="module-form" {
            (csrf_input(csrf))
            input type="hidden" name="provider_type" value=(reg.provider_type);
            @if editing.is_none() {
                div class={ "field" @if state.errors.contains_key("name") { " has-error" } } id="wrap-name" {
                    label for="field-name" { "Name" span class="req" { " *" } }
                    @let error = state.errors.get("name");
                    input type="text" id="field-name" name="name" value=(state.name) placeholder="e.g. archive" required
                        aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| forms::error_id("name"))];
                    p class="help" { "Unique; used in camera policies and on the command line." }
                    @if let Some(e) = error { p class="error field-error" id=(forms::error_id("name")) { (e) } }
                }
            }
            div class="field" {
                label for="field-label" { "Label" }
                input type="text" id="field-label" name="label" value=(state.label);
            }
            @if editing.is_none() {
                div class="field" {
                    label class="check" { input type="checkbox" name="enabled" value="true" checked[state.enabled]; " Enabled" }
                }
            }
            h2 { (reg.display_name) " settings" }
            (forms::render_fields(reg, state, editing.is_some()))
            div class="actions" {
                button type="submit" id="save" { (if editing.is_some() { "Save" } else { "Add module" }) }
                a class="btn secondary" href="/modules" { "Cancel" }
            }
        }
    };
    page(&title, "modules", csrf, body)
}

/// Check a config as the router will (spec, then the factory) so errors
/// show on the form instead of as an offline instance.
fn precheck(reg: &ProviderRegistration, name: &str, config: &serde_json::Value) -> Result<(), StorageError> {
    reg.check_config(config)?;
    let ctx = csal_core::InstanceContext::new(name, name, reg.provider_type);
    reg.build(&ctx, config).map(|_| ())
}

/// `POST /modules/new`: check the form as the router will, then add the module.
pub async fn create_module(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    fields: Fields,
) -> Response {
    let csrf = caller.csrf();
    let provider = field(&fields, "provider_type").unwrap_or("");
    let reg = match find_provider(provider) {
        Ok(r) => r,
        Err(e) => return error_page(&caller, &e),
    };
    let mut form = FormState {
        name: field(&fields, "name").unwrap_or("").trim().to_owned(),
        label: field(&fields, "label").unwrap_or("").trim().to_owned(),
        enabled: field(&fields, "enabled").is_some(),
        ..Default::default()
    };
    let config = forms::config_from_form(reg, &fields, &mut form);
    if let Err(e) = csal_catalog::check_module_name(&form.name) {
        form.errors.insert("name".into(), e.message().to_owned());
    }
    if !form.has_errors()
        && let Err(e) = precheck(reg, &form.name, &config)
    {
        form.set_error(reg, &e);
    }
    if !form.has_errors() {
        let new = NewModule {
            name: form.name.clone(),
            label: Some(form.label.clone()).filter(|l| !l.is_empty()),
            provider_type: reg.provider_type.to_owned(),
            is_enabled: form.enabled,
            config,
        };
        match state.catalog.create_module(new).await {
            Ok(_) => {
                let _ = state.catalog.router().health_check(&form.name).await;
                return Redirect::to(&format!("/modules/{}", seg(&form.name))).into_response();
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                form.errors.insert("name".into(), format!("a module named '{}' already exists", form.name));
            }
            Err(e) => form.set_error(reg, &e),
        }
    }
    (StatusCode::UNPROCESSABLE_ENTITY, module_form(csrf, reg, &form, None)).into_response()
}

/// `GET /modules/{name}/edit`: the form, secrets left empty.
pub async fn edit_module(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    let record = match state.catalog.get_module(&name).await {
        Ok(r) => r,
        Err(e) => return error_page(&caller, &e),
    };
    let reg = match find_provider(&record.provider_type) {
        Ok(r) => r,
        Err(e) => return error_page(&caller, &e),
    };
    let mut form = FormState::from_config(reg, &record.config);
    form.label = record.label.clone().unwrap_or_default();
    module_form(caller.csrf(), reg, &form, Some(&record.name)).into_response()
}

/// `POST /modules/{name}/edit`: save the changes (empty secrets keep their values).
pub async fn update_module(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    fields: Fields,
) -> Response {
    let record = match state.catalog.get_module(&name).await {
        Ok(r) => r,
        Err(e) => return error_page(&caller, &e),
    };
    let reg = match find_provider(&record.provider_type) {
        Ok(r) => r,
        Err(e) => return error_page(&caller, &e),
    };
    let mut form = FormState { label: field(&fields, "label").unwrap_or("").trim().to_owned(), ..Default::default() };
    let config = forms::config_from_form(reg, &fields, &mut form);
    if !form.has_errors() {
        // Secrets left empty are absent here; check the spec without them
        // missing by filling stored secrets back in the catalog only.
        let missing_secret_ok = |e: &StorageError| {
            forms::field_named_in(reg, e.message())
                .and_then(|k| reg.field(k))
                .is_some_and(|f| f.kind.is_secret() && e.message().contains("missing required"))
        };
        if let Err(e) = reg.check_config(&config)
            && !missing_secret_ok(&e)
        {
            form.set_error(reg, &e);
        }
    }
    if !form.has_errors() {
        let update = ModuleUpdate {
            label: Some(Some(form.label.clone()).filter(|l| !l.is_empty())),
            config: Some(config),
            is_enabled: None,
        };
        match state.catalog.update_module(&record.name, update).await {
            Ok(_) => {
                let _ = state.catalog.router().health_check(&record.name).await;
                return Redirect::to(&format!("/modules/{}", seg(&record.name))).into_response();
            }
            Err(e) => form.set_error(reg, &e),
        }
    }
    (StatusCode::UNPROCESSABLE_ENTITY, module_form(caller.csrf(), reg, &form, Some(&record.name))).into_response()
}

/// `POST /modules/{name}/test`: run a health check and show its result.
pub async fn test_module(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    let result = state.catalog.test_module(&name, false).await;
    detail_response(&state, &caller, &name, Some(result)).await
}

async fn set_enabled(state: &AdminState, caller: &Caller, name: &str, enabled: bool) -> Response {
    match state.catalog.set_enabled(name, enabled).await {
        Ok(rec) => {
            if enabled {
                let _ = state.catalog.router().health_check(&rec.name).await;
            }
            Redirect::to(&format!("/modules/{}", seg(&rec.name))).into_response()
        }
        Err(e) => error_page(caller, &e),
    }
}

/// `POST /modules/{name}/enable`.
pub async fn enable_module(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    set_enabled(&state, &caller, &name, true).await
}

/// `POST /modules/{name}/disable`.
pub async fn disable_module(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    set_enabled(&state, &caller, &name, false).await
}

/// `/modules/{name}/canary/{on|off}`: turn the write canary on or off.
pub async fn set_canary(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path((name, switch)): Path<(String, String)>,
) -> Response {
    let on = match switch.as_str() {
        "on" => true,
        "off" => false,
        _ => return error_page(&caller, &StorageError::invalid_input("the canary is turned 'on' or 'off'")),
    };
    if let Err(e) = state.catalog.set_canary(&name, on).await {
        return error_page(&caller, &e);
    }
    if on {
        let _ = state.catalog.router().health_check(&name).await;
        let _ = state.catalog.run_canary(&name).await;
    }
    Redirect::to(&format!("/modules/{}", seg(&name))).into_response()
}

/// `POST /modules/{name}/delete`: remove it from the catalog (stored objects stay).
pub async fn delete_module(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    match state.catalog.delete_module(&name).await {
        Ok(()) => modules_page(&state, &caller, Some((true, format!("Module '{name}' deleted.")))).into_response(),
        Err(e) => error_page(&caller, &e),
    }
}

// ---------------------------------------------------------------- policies

/// Query of `GET /policies`.
#[derive(serde::Deserialize)]
pub struct PolicyQuery {
    camera: Option<String>,
}

/// The policy form's fields, as text (what the admin typed, on errors).
#[derive(Default)]
struct PolicyForm {
    camera: String,
    targets: String,
    copies: String,
    retention_days: String,
    max_gib: String,
    keep_days: String,
    tiers: String,
}

impl PolicyForm {
    fn of(camera: &str, p: &csal_catalog::CameraPolicy) -> Self {
        PolicyForm {
            camera: camera.to_owned(),
            targets: p.targets.join("\n"),
            copies: p.copies.to_string(),
            retention_days: p.retention_days.map(|d| d.to_string()).unwrap_or_default(),
            max_gib: p.max_bytes.map(|b| format!("{}", b as f64 / (1u64 << 30) as f64)).unwrap_or_default(),
            keep_days: p.keep_days.iter().map(|(t, d)| format!("{t}={d}")).collect::<Vec<_>>().join(", "),
            tiers: p.tiers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        }
    }

    fn from_fields(fields: &[(String, String)]) -> Self {
        let f = |k: &str| field(fields, k).unwrap_or("").trim().to_owned();
        PolicyForm {
            camera: f("camera"),
            targets: field(fields, "targets").unwrap_or("").to_owned(),
            copies: f("copies"),
            retention_days: f("retention_days"),
            max_gib: f("max_gib"),
            keep_days: f("keep_days"),
            tiers: f("tiers"),
        }
    }

    /// The policy, or the first field error.
    fn policy(&self, known: &[String]) -> Result<csal_catalog::CameraPolicy, String> {
        if self.camera.is_empty() {
            return Err("give a camera id".into());
        }
        let number = |what: &str, text: &str| -> Result<Option<u32>, String> {
            match text {
                "" => Ok(None),
                t => t.parse().map(Some).map_err(|_| format!("{what} must be a whole number, not '{t}'")),
            }
        };
        let mut keep_days = std::collections::BTreeMap::new();
        for pair in self.keep_days.split([',', '\n']).map(str::trim).filter(|p| !p.is_empty()) {
            let (target, days) =
                pair.split_once('=').ok_or_else(|| format!("keep days: '{pair}' is not TARGET=DAYS"))?;
            let days = number("keep days", days.trim())?.unwrap_or(0);
            keep_days.insert(target.trim().to_owned(), days);
        }
        let max_bytes = match self.max_gib.as_str() {
            "" => None,
            t => match t.parse::<f64>() {
                Ok(g) if g > 0.0 && g.is_finite() => Some((g * (1u64 << 30) as f64) as u64),
                _ => return Err(format!("max GiB must be a positive number, not '{t}'")),
            },
        };
        let tiers = self
            .tiers
            .split([',', '\n'])
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| csal_catalog::TierRule::parse(r).map_err(|e| format!("tiering: {}", e.message())))
            .collect::<Result<_, _>>()?;
        Ok(csal_catalog::CameraPolicy {
            targets: parse_targets(&self.targets, known)?,
            copies: number("copies", &self.copies)?.unwrap_or(1),
            retention_days: number("retention days", &self.retention_days)?,
            max_bytes,
            keep_days,
            tiers,
        })
    }
}

/// `GET /policies`: the camera policies, and the form (filled for `?camera=`).
pub async fn policies(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<PolicyQuery>,
) -> Response {
    let camera = q.camera.unwrap_or_default();
    let form = match camera.is_empty() {
        true => None,
        false => state.catalog.get_policy(&camera).await.ok().map(|p| PolicyForm::of(&camera, &p)),
    };
    policies_page(&state, &caller, form.unwrap_or_default(), None).await
}

async fn policies_page(
    state: &AdminState,
    caller: &Caller,
    form: PolicyForm,
    flash: Option<(bool, String)>,
) -> Response {
    let csrf = caller.csrf();
    let list = match state.catalog.list_policies().await {
        Ok(l) => l,
        Err(e) => return error_page(caller, &e),
    };
    let names: Vec<String> = state.catalog.router().instances().into_iter().map(|i| i.name).collect();
    let status = if matches!(flash, Some((false, _))) { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let body = html! {
        h1 { "Camera storage policies" }
        p class="muted" { "Each camera writes to its targets in order: the first that works takes the segment. With copies N, each segment must land on N distinct targets. Retention deletes what is older than the policy keeps, except what a legal hold covers. The policy of camera " code { "*" } " is the default: it applies to every camera without a policy of its own." }
        @if let Some((ok, msg)) = flash { div class={ "flash " (if ok { "ok" } else { "bad" }) } id="policy-flash" { (msg) } }
        @if list.is_empty() {
            div class="card" { "No camera policies yet." }
        } @else {
            table id="policies" {
                thead { tr { th { "Camera" } th { "Targets (in order)" } th { "Copies" } th { "Kept" } th { "Actions" } } }
                tbody {
                    @for (cam, policy) in &list {
                        tr {
                            td { code { (cam) } @if cam == csal_catalog::DEFAULT_POLICY { " " span class="tag" { "default" } } }
                            td { @for (n, t) in policy.targets.iter().enumerate() { @if n > 0 { " → " } code { (t) } } }
                            td { (policy.copies) }
                            td { (policy.retention_text()) }
                            td { div class="actions" {
                                a class="btn small secondary" href={ "/policies?camera=" (seg(cam)) } { "Edit" }
                                (post_button(&format!("/policies/{}/delete", seg(cam)), csrf, "Delete", "small danger"))
                            } }
                        }
                    }
                }
            }
        }
        h2 { "Set a policy" }
        form class="card" method="post" action="/policies" id="policy-form" {
            (csrf_input(csrf))
            div class="field" {
                label for="camera" { "Camera id" }
                input type="text" id="camera" name="camera" value=(form.camera) required;
                p class="help" { code { "*" } " sets the default policy." }
            }
            div class="field" {
                label for="targets" { "Targets, one module name per line, in order" }
                textarea id="targets" name="targets" rows="4" required { (form.targets) }
                p class="help" { "Known modules: " @for n in &names { code { (n) } " " } }
            }
            div class="field" {
                label for="copies" { "Copies of each segment" }
                input type="number" id="copies" name="copies" min="1" value=(if form.copies.is_empty() { "1" } else { &form.copies });
                p class="help" { "How many distinct targets must hold every segment (1 = the first that works)." }
            }
            div class="field" {
                label for="retention_days" { "Keep for (days)" }
                input type="number" id="retention_days" name="retention_days" min="1" value=(form.retention_days);
                p class="help" { "Empty: keep until the size cap, or forever." }
            }
            div class="field" {
                label for="max_gib" { "Size cap (GiB, every copy counted)" }
                input type="text" id="max_gib" name="max_gib" value=(form.max_gib);
            }
            div class="field" {
                label for="keep_days" { "Per target: days" }
                input type="text" id="keep_days" name="keep_days" value=(form.keep_days) placeholder="nas=7, s3=90";
                p class="help" { "A target's copy goes after that many days, unless it is the segment's last copy." }
            }
            div class="field" {
                label for="tiers" { "Tiering: FROM>TO@DAYS" }
                input type="text" id="tiers" name="tiers" value=(form.tiers) placeholder="nas>cloud@30";
                p class="help" { "After that many days a segment's copy on FROM is copied to TO, verified, and deleted from FROM." }
            }
            button type="submit" id="save-policy" { "Save policy" }
        }
    };
    (status, page("Camera policies", "policies", csrf, body)).into_response()
}

/// Parse a target list (lines or commas) and check each names a module.
fn parse_targets(text: &str, known: &[String]) -> Result<Vec<String>, String> {
    let targets: Vec<String> =
        text.split(['\n', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if targets.is_empty() {
        return Err("give at least one target module".into());
    }
    for t in &targets {
        if !known.contains(t) {
            return Err(format!("no storage module named '{t}'"));
        }
    }
    Ok(targets)
}

/// `POST /policies`: set a camera's policy.
pub async fn save_policy(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    fields: Fields,
) -> Response {
    let form = PolicyForm::from_fields(&fields);
    let known: Vec<String> = state.catalog.router().instances().into_iter().map(|i| i.name).collect();
    let saved = match form.policy(&known) {
        Ok(policy) => state.catalog.set_policy(&form.camera, policy).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match saved {
        Ok(()) => {
            let done = format!("Policy of camera '{}' saved.", form.camera);
            policies_page(&state, &caller, PolicyForm::default(), Some((true, done))).await
        }
        Err(e) => policies_page(&state, &caller, form, Some((false, e))).await,
    }
}

/// `POST /policies/{camera}/delete`.
pub async fn delete_policy(
    State(state): State<AdminState>,
    Extension(caller): Extension<Caller>,
    Path(camera): Path<String>,
) -> Response {
    match state.catalog.delete_policy(&camera).await {
        Ok(()) => {
            let done = format!("Policy of camera '{camera}' deleted.");
            policies_page(&state, &caller, PolicyForm::default(), Some((true, done))).await
        }
        Err(e) => error_page(&caller, &e),
    }
}
