//! Sending a request with a bearer token, replaced once after a 401, and
//! the health check built on the same tokens: the plumbing every OAuth
//! provider needs.

use std::sync::Arc;

use async_trait::async_trait;
use csal_core::{ExposeSecret, Result, SecretString, StorageError};
use csal_http::ErrorAnswer;

use crate::TokenManager;

/// Hands out bearer tokens and replaces one the service refused.
#[async_trait]
pub trait BearerSource: Send + Sync {
    /// See [`TokenManager::health`].
    fn token_health(&self) -> Option<String>;
    /// See [`TokenManager::is_authorised`].
    fn is_authorised(&self) -> bool;
    /// Tokens obtained from the token endpoint so far.
    fn refresh_count(&self) -> u64;
    /// A token valid for at least a little while.
    async fn access_token(&self) -> Result<SecretString>;
    /// The service refused `rejected` (401): the token to retry with.
    async fn refresh_after_rejection(&self, rejected: &SecretString) -> Result<SecretString>;
    /// Get a new token now (`refresh_credentials`).
    async fn force_refresh(&self) -> Result<()>;
}

#[async_trait]
impl BearerSource for TokenManager {
    fn token_health(&self) -> Option<String> {
        TokenManager::health(self)
    }
    fn is_authorised(&self) -> bool {
        TokenManager::is_authorised(self)
    }
    fn refresh_count(&self) -> u64 {
        TokenManager::refresh_count(self)
    }
    async fn access_token(&self) -> Result<SecretString> {
        TokenManager::access_token(self).await
    }
    async fn refresh_after_rejection(&self, rejected: &SecretString) -> Result<SecretString> {
        TokenManager::refresh_after_rejection(self, rejected).await
    }
    async fn force_refresh(&self) -> Result<()> {
        TokenManager::force_refresh(self).await.map(|_| ())
    }
}

/// Send the request `build` makes for a token; after a 401, get a
/// replacement (single-flight in [`TokenManager`]) and send once more.
/// The outer error is a token failure (already classified); the inner one
/// a transport failure, for the provider to classify.
pub async fn send_with_bearer(
    source: &(impl BearerSource + ?Sized),
    build: impl Fn(&SecretString) -> reqwest::RequestBuilder,
) -> Result<std::result::Result<reqwest::Response, reqwest::Error>> {
    let token = source.access_token().await?;
    let resp = match build(&token).send().await {
        Ok(resp) => resp,
        Err(e) => return Ok(Err(e)),
    };
    if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Ok(Ok(resp));
    }
    drop(resp);
    tracing::debug!("the service refused the access token; refreshing");
    let token = source.refresh_after_rejection(&token).await?;
    Ok(build(&token).send().await)
}

/// How a provider turns an error answer of its API into a `StorageError`
/// (its one error table).
pub type Classifier = fn(ErrorAnswer, &str) -> StorageError;

/// An OAuth provider's API client: its HTTP client, its tokens and its
/// error table. Every request carries the bearer token and is sent again
/// once with a new token after a 401; failed answers come back as capped
/// [`ErrorAnswer`]s.
pub struct BearerHttp<T: BearerSource + ?Sized> {
    http: reqwest::Client,
    tokens: Arc<T>,
    classify: Classifier,
}

impl<T: BearerSource + ?Sized> BearerHttp<T> {
    /// Requests through `http` with tokens from `tokens`; `classify` maps failed answers to errors.
    pub fn new(http: reqwest::Client, tokens: Arc<T>, classify: Classifier) -> Self {
        BearerHttp { http, tokens, classify }
    }

    /// The plain client (for pre-authorised URLs that must not get the token).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The token source (to refresh or inspect tokens outside a request).
    pub fn tokens(&self) -> &Arc<T> {
        &self.tokens
    }

    /// The request `build` makes, with the bearer token. Success and
    /// redirects: `Ok(Ok(response))`; other answers: `Ok(Err(answer))` for
    /// the caller to look at (a 404 or 409 may be expected); token and
    /// transport failures: `Err`.
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<std::result::Result<reqwest::Response, ErrorAnswer>> {
        let response = send_with_bearer(&*self.tokens, |token| build(&self.http).bearer_auth(token.expose_secret()))
            .await?
            .map_err(|e| csal_http::transport_error(e, what))?;
        Ok(ErrorAnswer::check(response).await)
    }

    /// [`BearerHttp::send`], every failure classified.
    pub async fn call(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        self.send(what, build).await?.map_err(|answer| self.fail(answer, what))
    }

    /// [`BearerHttp::call`] and its JSON answer (`null` for an empty body).
    pub async fn json(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<serde_json::Value> {
        csal_http::read_json(self.call(what, build).await?, what).await
    }

    /// The provider's error for `answer`.
    pub fn fail(&self, answer: ErrorAnswer, what: &str) -> StorageError {
        (self.classify)(answer, what)
    }
}

/// An OAuth provider's `health_check`: time `probe` (its cheapest
/// authenticated call), judge it with [`crate::health_report`], and add the
/// token refresh count as a detail.
pub async fn check_health<T>(
    source: &(impl BearerSource + ?Sized),
    probe: impl std::future::Future<Output = Result<T>>,
) -> csal_core::HealthReport {
    let started = std::time::Instant::now();
    let outcome = probe.await.map(|_| ());
    let latency = started.elapsed().max(std::time::Duration::from_nanos(1));
    crate::health_report(source.token_health(), source.is_authorised(), outcome, latency)
        .with_detail("token_refreshes", source.refresh_count())
}
