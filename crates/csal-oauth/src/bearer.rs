//! Sending a request with a bearer token, replaced once after a 401, and
//! the health check built on the same tokens: the plumbing every OAuth
//! provider needs.

use async_trait::async_trait;
use csal_core::{Result, SecretString};

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
