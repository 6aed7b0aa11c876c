//! The HTTP client: one `reqwest::Client` with connect / read timeouts,
//! Blob service URLs (host style or Azurite's path style, both given as the
//! endpoint root), and the signing of every request.

use csal_oauth::TokenManager;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Request, RequestBuilder, Response, Url};

use csal_core::{ExposeSecret, Result, StorageError};

use crate::config::{Credentials, Settings};
use crate::error;
use crate::sign;

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

pub(crate) struct AzureClient {
    pub http: reqwest::Client,
    pub settings: Settings,
}

impl AzureClient {
    pub(crate) fn new(settings: Settings) -> Result<AzureClient> {
        let http =
            csal_http::HttpOptions::new(concat!("csal-azure-blob/", env!("CARGO_PKG_VERSION")), settings.timeouts)
                .ca_file(settings.ca_file.clone())
                .build()?;
        Ok(AzureClient { http, settings })
    }

    fn url(&self, path: &str) -> Result<Url> {
        Url::parse(&format!("{}{path}", self.settings.endpoint))
            .map_err(|e| StorageError::invalid_input("cannot build a request URL").with_source(e))
    }

    /// `{endpoint}/{container}?restype=container`
    pub(crate) fn container_url(&self) -> Result<Url> {
        let mut url = self.url(&format!("/{}", self.settings.container))?;
        url.query_pairs_mut().append_pair("restype", "container");
        Ok(url)
    }

    /// `{endpoint}/{container}/{blob}` with each path segment escaped.
    pub(crate) fn blob_url(&self, name: &str) -> Result<Url> {
        let path: Vec<String> = name.split('/').map(|s| utf8_percent_encode(s, SEGMENT).to_string()).collect();
        self.url(&format!("/{}/{}", self.settings.container, path.join("/")))
    }

    /// Sign and send; only transport failures are errors.
    pub(crate) async fn send_raw(&self, request: RequestBuilder, what: &str) -> Result<Response> {
        let mut request = request.build().map_err(|e| error::from_reqwest(e, what))?;
        match &self.settings.credentials {
            Credentials::SharedKey { key } => sign::sign_shared_key(&mut request, &self.settings.account, key)?,
            Credentials::Sas { token } => sign::apply_sas(&mut request, token.expose_secret()),
            Credentials::Bearer { tokens } => return self.send_with_token(request, tokens, what).await,
        }
        self.execute(request, what).await
    }

    async fn execute(&self, request: Request, what: &str) -> Result<Response> {
        self.http.execute(request).await.map_err(|e| error::from_reqwest(e, what))
    }

    /// Send with the current Entra ID token. A token the service refuses
    /// (revoked, expired early) is renewed once (single-flight in
    /// `TokenManager`) and the request sent again when its body can be; a
    /// streamed body cannot, so that write fails as transient for the
    /// retry layer, which replays bodies it kept, with the new token.
    async fn send_with_token(&self, mut request: Request, tokens: &TokenManager, what: &str) -> Result<Response> {
        let token = tokens.access_token().await.map_err(|e| token_error(e, what))?;
        sign::apply_bearer(&mut request, token.expose_secret())?;
        let again = request.try_clone();
        let response = self.execute(request, what).await?;
        if !token_refused(&response) {
            return Ok(response);
        }
        tracing::debug!(operation = what, "Azure Storage refused the access token; renewing it");
        let fresh = tokens.refresh_after_rejection(&token).await.map_err(|e| token_error(e, what))?;
        match again {
            Some(mut request) => {
                sign::apply_bearer(&mut request, fresh.expose_secret())?;
                self.execute(request, what).await
            }
            None if fresh.expose_secret() != token.expose_secret() => Err(StorageError::transient(format!(
                "{what}: the access token was refused and has been renewed; the streamed body cannot be resent"
            ))),
            None => Ok(response),
        }
    }

    /// Send with the request timeout; non-2xx answers become classified errors.
    pub(crate) async fn send(&self, request: RequestBuilder, what: &str) -> Result<Response> {
        let response = self.send_raw(request.timeout(self.settings.request_timeout), what).await?;
        if response.status().is_success() { Ok(response) } else { Err(error::from_response(response, what).await) }
    }
}

/// Whether Azure Storage refused the bearer token itself (401, or 403
/// `AuthenticationFailed` / `InvalidAuthenticationInfo`), rather than the
/// identity's permissions (403 `AuthorizationPermissionMismatch`).
fn token_refused(response: &Response) -> bool {
    let code = response.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).unwrap_or("");
    response.status() == reqwest::StatusCode::UNAUTHORIZED
        || (response.status() == reqwest::StatusCode::FORBIDDEN
            && matches!(code, "AuthenticationFailed" | "InvalidAuthenticationInfo"))
}

/// A token that could not be obtained, said in terms of the operation.
fn token_error(err: StorageError, what: &str) -> StorageError {
    StorageError::new(err.kind(), format!("{what}: no Entra ID token: {}", err.message()))
        .with_retry_after(err.retry_after())
        .with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SecretBytes, Settings};
    use std::time::Duration;

    #[test]
    fn blob_urls_keep_slashes_and_escape_the_rest() {
        let settings = Settings {
            account: "devstoreaccount1".into(),
            container: "c1".into(),
            endpoint: "http://127.0.0.1:10000/devstoreaccount1".into(),
            credentials: Credentials::SharedKey { key: SecretBytes(vec![1]) },
            block_size: 1024,
            timeouts: csal_core::Timeouts::from_secs(1, 1, Some(1)).unwrap(),
            request_timeout: Duration::from_secs(1),
            block_attempts: 1,
            upload_concurrency: 1,
            ca_file: None,
        };
        let client = AzureClient::new(settings).unwrap();
        assert_eq!(
            client.blob_url("cam 5/ü+x.mp4").unwrap().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/c1/cam%205/%C3%BC%2Bx.mp4"
        );
        assert_eq!(
            client.container_url().unwrap().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/c1?restype=container"
        );
    }
}
