//! `csal module authorize NAME`: the provider's OAuth authorization-code
//! flow with a loopback redirect (RFC 8252 section 7.3), for instances that
//! have no token yet or whose refresh token was revoked.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use csal_catalog::Catalog;
use csal_core::{HealthStatus, StorageError};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::exit::{CliError, CliResult};
use crate::output;

/// What the callback handler hands the command: the redirect's query, and
/// where to send the page the browser shows.
type Callback = (HashMap<String, String>, oneshot::Sender<Result<String, String>>);

pub async fn authorize(
    cat: &Catalog,
    name: &str,
    port: Option<u16>,
    timeout: Duration,
    open: bool,
    json: bool,
) -> CliResult {
    let (rec, client) = csal_admin::oauth::oauth_client(cat, name).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.unwrap_or(0))).await.map_err(|e| {
        CliError::other(format!("cannot listen on 127.0.0.1:{} for the redirect: {e}", port.unwrap_or(0)))
    })?;
    let local = listener.local_addr()?;
    let redirect_uri = format!("http://127.0.0.1:{}/callback", local.port());
    let pending = client.start(&redirect_uri)?;

    let (tx, mut rx) = mpsc::channel::<Callback>(1);
    let app = axum::Router::new().route("/callback", axum::routing::get(callback)).with_state(tx);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .await;
    });

    let intro = format!(
        "To authorise module '{}' ({}), open this URL in a browser and allow access:\n\n  {}\n\n\
         Waiting up to {} s for the redirect to {redirect_uri} (register it with the provider).",
        rec.name,
        rec.provider_type,
        pending.authorize_url(),
        timeout.as_secs()
    );
    // With --json, stdout carries only the final JSON document.
    if json {
        eprintln!("{intro}");
    } else {
        println!("{intro}");
        std::io::Write::flush(&mut std::io::stdout())?;
    }
    if open {
        open_browser(pending.authorize_url());
    }

    let outcome = tokio::time::timeout(timeout, async {
        let (params, reply) = rx.recv().await.ok_or_else(|| CliError::other("the redirect listener stopped"))?;
        let saved = async {
            let tokens = pending.finish(&params).await?;
            cat.save_config_changes(&rec.id, pending.client().config_changes(&tokens)).await?;
            Ok::<_, StorageError>(tokens)
        }
        .await
        .map_err(|e| e.with_instance(rec.name.clone()));
        let page = match &saved {
            Ok(_) => Ok(format!("Module '{}' is authorised. You can close this window.", rec.name)),
            Err(e) => Err(e.to_string()),
        };
        let _ = reply.send(page);
        saved.map_err(CliError::from)
    })
    .await;
    // The browser's page is answered before the listener stops.
    let _ = stop_tx.send(());
    let _ = server.await;
    let tokens = match outcome {
        Ok(result) => result?,
        Err(_) => {
            return Err(CliError::from(StorageError::new(
                csal_core::ErrorKind::Timeout,
                format!(
                    "no redirect arrived within {} s: run `csal module authorize {}` again (--timeout SECS for longer)",
                    timeout.as_secs(),
                    rec.name
                ),
            )));
        }
    };

    let expires = tokens.refresh_token_expires_at.map(|t| humantime::format_rfc3339_seconds(t).to_string());
    let report = cat.router().test(&rec.name).await;
    if json {
        output::json(&json!({
            "authorized": rec.name,
            "refresh_token": tokens.refresh_token.is_some(),
            "refresh_token_expires_at": expires,
            "test": report.as_ref().ok(),
            "test_error": report.as_ref().err().map(ToString::to_string),
        }));
    } else {
        println!(
            "authorised module '{}': tokens saved in the catalog (encrypted){}",
            rec.name,
            expires.as_deref().map(|e| format!("; the refresh token expires at {e}")).unwrap_or_default()
        );
        if tokens.refresh_token.is_none() {
            eprintln!("csal: warning: the provider sent no refresh token: access stops when the access token expires");
        }
        match &report {
            Ok(r) => {
                let latency = r.latency.map(|d| format!(" in {:.1} ms", d.as_secs_f64() * 1000.0)).unwrap_or_default();
                println!("test: {}{latency}", r.status.as_str());
                if let Some(e) = &r.last_error {
                    println!("  {e}");
                }
            }
            Err(e) => println!("test: failed: {e}"),
        }
    }
    match report {
        Ok(r) if r.status == HealthStatus::Ok => Ok(()),
        Ok(r) => Err(CliError::unhealthy(format!(
            "module '{}' was authorised but its test is {}{}",
            rec.name,
            r.status.as_str(),
            r.last_error.map(|e| format!(": {e}")).unwrap_or_default()
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn callback(State(tx): State<mpsc::Sender<Callback>>, Query(params): Query<HashMap<String, String>>) -> Response {
    let (reply_tx, reply_rx) = oneshot::channel();
    if tx.send((params, reply_tx)).await.is_err() {
        return page(false, "This authorization request is already finished. Run the command again.");
    }
    match reply_rx.await {
        Ok(Ok(msg)) => page(true, &msg),
        Ok(Err(msg)) => page(false, &msg),
        Err(_) => page(false, "The command stopped before finishing. Run it again."),
    }
}

fn page(ok: bool, message: &str) -> Response {
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let title = if ok { "CSAL: authorised" } else { "CSAL: authorization failed" };
    let status = if ok { axum::http::StatusCode::OK } else { axum::http::StatusCode::BAD_REQUEST };
    (status, Html(format!("<!doctype html><title>{title}</title><h1>{title}</h1><p>{escaped}</p>"))).into_response()
}

/// Best effort: the URL is printed anyway.
fn open_browser(url: &str) {
    let mut cmd = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    if let Err(e) = cmd.arg(url).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn() {
        eprintln!("csal: warning: cannot open a browser ({e}): open the URL above yourself");
    }
}
