//! The tokens an authorisation or a refresh yields.

use std::time::SystemTime;

use csal_core::SecretString;

/// The tokens after a refresh (what a [`crate::TokenStore`] persists).
#[derive(Clone)]
pub struct TokenSet {
    /// The bearer token requests carry.
    pub access_token: SecretString,
    /// The refresh token to use next time (rotated by some providers).
    pub refresh_token: Option<SecretString>,
    /// When the access token expires; `None`: unknown (refreshed after a 401).
    pub expires_at: Option<SystemTime>,
    /// When the refresh token itself stops working, if the provider says
    /// or its lifetime is known (Box: 60 days; Microsoft: 90 days idle).
    pub refresh_token_expires_at: Option<SystemTime>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &csal_core::secret::MASK)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| csal_core::secret::MASK))
            .field("expires_at", &self.expires_at)
            .field("refresh_token_expires_at", &self.refresh_token_expires_at)
            .finish()
    }
}
