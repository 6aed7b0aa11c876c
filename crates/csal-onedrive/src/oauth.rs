//! The authorization-code flow of the Microsoft identity platform, for
//! `csal module authorize` and the admin UI's Authorize button ("Microsoft
//! identity platform and OAuth 2.0 authorization code flow",
//! <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>:
//! `/{tenant}/oauth2/v2.0/authorize` with PKCE S256 and `offline_access` in
//! the scopes for a refresh token; refresh tokens last 90 days).

/// Microsoft's OAuth endpoints and rules (also what the client refreshes with).
pub(crate) const SPEC: csal_oauth::OAuthProviderSpec = csal_oauth::OAuthProviderSpec {
    provider_type: "onedrive",
    authorize_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
    token_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
    url_params: &[("tenant", "common")],
    scopes: "offline_access Files.ReadWrite.All",
    scope_key: Some("scope"),
    extra_params: &[],
    client_id_key: "client_id",
    client_secret_key: Some("client_secret"),
    authorize_url_key: None,
    token_url_key: Some("token_url"),
    refresh_token_lifetime: Some(std::time::Duration::from_secs(90 * 24 * 3600)),
    saves_refresh_expiry: true,
    not_with_keys: &[],
};

csal_oauth::inventory::submit! { SPEC }
