//! Calls to an OAuth token endpoint (refresh, client credentials, code
//! exchange): one client, one way to post a form and read the answer.

use std::time::Duration;

use bytes::Bytes;
use csal_core::{ErrorKind, Result, StorageError, Timeouts};
use csal_http::ErrorAnswer;

/// Longest a token request may take in all.
const TOKEN_REQUEST_TIME: Duration = Duration::from_secs(30);

pub(crate) fn client() -> Result<reqwest::Client> {
    let timeouts = Timeouts { connect: Duration::from_secs(10), read: TOKEN_REQUEST_TIME, request: None };
    csal_http::HttpOptions::new(concat!("csal-oauth/", env!("CARGO_PKG_VERSION")), timeouts).build()
}

/// POST `form` to the token endpoint: the body of a success (a token
/// answer is small; at most csal-http's answer cap is read), or the error
/// answer (its first 8 KiB).
pub(crate) async fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<std::result::Result<Bytes, ErrorAnswer>> {
    answer(http.post(url).form(form)).await
}

/// GET `url` with `headers` (a metadata service's token endpoint); the
/// answer as [`post_form`] gives it.
pub(crate) async fn get(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
) -> Result<std::result::Result<Bytes, ErrorAnswer>> {
    let request = headers.iter().fold(http.get(url), |r, (k, v)| r.header(k.as_str(), v.as_str()));
    answer(request).await
}

async fn answer(request: reqwest::RequestBuilder) -> Result<std::result::Result<Bytes, ErrorAnswer>> {
    let what = "the OAuth token endpoint";
    let resp = request.timeout(TOKEN_REQUEST_TIME).send().await.map_err(|e| {
        let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Transient };
        StorageError::new(kind, "cannot reach the OAuth token endpoint").with_source(e.without_url())
    })?;
    if !resp.status().is_success() {
        return Ok(Err(ErrorAnswer::read(resp).await));
    }
    Ok(Ok(csal_http::read_answer(resp, what).await?))
}

/// The `error` code of an error answer (RFC 6749 section 5.2), or "".
pub(crate) fn error_code(answer: &ErrorAnswer) -> String {
    answer.json()["error"].as_str().unwrap_or_default().to_owned()
}
