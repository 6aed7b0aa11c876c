//! # csal-oauth
//!
//! OAuth 2.0 token handling shared by CSAL's file-sync providers.
//!
//! A [`TokenManager`] holds one instance's access token, refresh token and
//! expiry (all [`SecretString`]). [`TokenManager::access_token`] returns a
//! token that is valid for at least the configured skew, refreshing it first
//! when it is about to expire; [`TokenManager::refresh_after_rejection`] is
//! what a provider calls after a 401 with the token that was refused. Both
//! are single-flight: the refresh runs under one `tokio::sync::Mutex`, so a
//! hundred concurrent uploads that all see an expired token cause one call
//! to the token endpoint, and the others reuse its result.
//!
//! Refreshed tokens are handed to a [`TokenStore`] (a provider's refresh
//! token may rotate, and a restart must not lose it). [`MemoryTokenStore`]
//! is the in-process implementation; the catalog's encrypted settings are
//! the persistent one (see the crate README).
//!
//! Instances without any token yet load, and every call fails with an Auth
//! error telling the admin to run `csal module authorize NAME`; the
//! [`authorize`] module runs that authorization-code flow (PKCE, loopback or
//! admin-UI redirect) from each provider's registered [`OAuthProviderSpec`].
#![warn(missing_docs)]

pub mod authorize;
mod bearer;
mod endpoint;
mod save;
mod service;
mod store;
mod token;
mod tokens;

pub use bearer::{BearerHttp, BearerSource, Classifier, check_health, send_with_bearer};
pub use save::SaveRetry;
pub use service::{FileSyncService, OAuthModule};
pub use store::{ConfigTokenStore, MemoryTokenStore, REFRESH_TOKEN_EXPIRES_AT, TokenStore};
pub use token::{OAuthSettings, REFRESH_TOKEN_WARNING, TokenManager, health_report, parse_refresh_token_expiry};
pub use tokens::TokenSet;

pub use authorize::{OAuthClient, OAuthProviderSpec, PendingAuthorization, find_spec};
pub use csal_core::SecretString;
/// For provider crates' `csal_oauth::inventory::submit!` of their [`OAuthProviderSpec`].
pub use inventory;
