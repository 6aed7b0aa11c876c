//! The authorization-code grant shared by the OAuth fakes (RFC 6749
//! section 4.1 and RFC 7636 PKCE, as Dropbox, Microsoft and Google document
//! them): the authorize endpoint answers as if the user had already
//! consented — a 302 to `redirect_uri` with `code` and `state` (or
//! `error=access_denied` when the fake is told to refuse) — and the token
//! endpoint's `grant_type=authorization_code` checks that the code is known
//! and unused, that `redirect_uri` is the one the code was issued for, and
//! that `code_verifier` hashes (S256) to the `code_challenge`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use sha2_11::Digest as _;

struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    scope: String,
}

/// Codes issued by one fake's authorize endpoint.
#[derive(Default)]
pub(crate) struct AuthCodes {
    codes: Mutex<HashMap<String, Grant>>,
    /// Codes already exchanged (a second exchange gets `invalid_grant`).
    used: Mutex<Vec<String>>,
    deny: AtomicBool,
    counter: AtomicU64,
    /// Authorize requests answered (with a code or an error).
    pub(crate) authorizations: AtomicU64,
    /// Codes exchanged for tokens.
    pub(crate) exchanges: AtomicU64,
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("Error (400): {message}")).into_response()
}

fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return bad_request("redirect_uri is not a URL"),
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        resp.headers_mut().insert("location", v);
    }
    resp
}

/// What the token endpoint answers when an exchange fails.
pub(crate) struct ExchangeError(pub StatusCode, pub Value);

impl AuthCodes {
    /// Refuse (`error=access_denied`) or consent to the next authorizations.
    pub(crate) fn set_deny(&self, deny: bool) {
        self.deny.store(deny, Ordering::Relaxed);
    }

    /// GET authorize: parameter errors are shown to the user (400, as the
    /// providers do for a bad client id or redirect URI); otherwise 302 to
    /// `redirect_uri`.
    pub(crate) fn authorize(&self, client_id: &str, q: &HashMap<String, String>) -> Response {
        let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
        if get("client_id") != client_id {
            return bad_request("invalid client_id");
        }
        let redirect_uri = get("redirect_uri");
        if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://")) {
            return bad_request("invalid redirect_uri");
        }
        if get("response_type") != "code" {
            return bad_request("unsupported response_type");
        }
        let challenge = q.get("code_challenge").cloned();
        if challenge.is_some() && get("code_challenge_method") != "S256" {
            return bad_request("code_challenge_method must be S256");
        }
        self.authorizations.fetch_add(1, Ordering::Relaxed);
        let state = get("state");
        if self.deny.load(Ordering::Relaxed) {
            return redirect(
                redirect_uri,
                &[("error", "access_denied"), ("error_description", "The user denied access"), ("state", state)],
            );
        }
        let code = format!("fake-code-{}-{}", self.counter.fetch_add(1, Ordering::Relaxed), fastrand::u64(..));
        self.codes.lock().expect("lock").insert(
            code.clone(),
            Grant {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                challenge,
                scope: get("scope").to_owned(),
            },
        );
        redirect(redirect_uri, &[("code", &code), ("state", state)])
    }

    /// `grant_type=authorization_code`: the code is consumed whatever the
    /// outcome (single use). Returns the scope asked for.
    pub(crate) fn exchange(&self, form: &HashMap<String, String>) -> Result<String, ExchangeError> {
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let invalid = |why: &str| {
            ExchangeError(StatusCode::BAD_REQUEST, json!({ "error": "invalid_grant", "error_description": why }))
        };
        let code = get("code");
        let Some(grant) = self.codes.lock().expect("lock").remove(code) else {
            let used = self.used.lock().expect("lock").iter().any(|c| c == code);
            return Err(invalid(if used { "code has already been used" } else { "code doesn't exist or has expired" }));
        };
        self.used.lock().expect("lock").push(code.to_owned());
        if grant.client_id != get("client_id") {
            return Err(invalid("code was issued to another client"));
        }
        if grant.redirect_uri != get("redirect_uri") {
            return Err(invalid("redirect_uri mismatch"));
        }
        if let Some(challenge) = &grant.challenge {
            let verifier = get("code_verifier");
            let computed =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2_11::Sha256::digest(verifier.as_bytes()));
            if verifier.len() < 43 || verifier.len() > 128 || &computed != challenge {
                return Err(invalid("invalid code verifier"));
            }
        }
        self.exchanges.fetch_add(1, Ordering::Relaxed);
        Ok(grant.scope)
    }
}
