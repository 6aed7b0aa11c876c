//! Sending a request with a bearer token, replaced once after a 401: the
//! one piece of request plumbing every OAuth provider needs.

use async_trait::async_trait;
use csal_core::{Result, SecretString};

use crate::TokenManager;

/// Hands out bearer tokens and replaces one the service refused.
#[async_trait]
pub trait BearerSource: Send + Sync {
    /// A token valid for at least a little while.
    async fn access_token(&self) -> Result<SecretString>;
    /// The service refused `rejected` (401): the token to retry with.
    async fn refresh_after_rejection(&self, rejected: &SecretString) -> Result<SecretString>;
}

#[async_trait]
impl BearerSource for TokenManager {
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
