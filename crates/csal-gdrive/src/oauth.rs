//! The authorization-code flow of Google, for `csal module authorize` and
//! the admin UI's Authorize button ("Using OAuth 2.0 for Web Server
//! Applications", <https://developers.google.com/identity/protocols/oauth2/web-server>:
//! `access_type=offline` for a refresh token, `prompt=consent` so Google
//! sends one again on re-authorisation, PKCE S256; and "OAuth 2.0 for
//! iOS & Desktop Apps" for loopback redirect URIs). Service-account
//! instances have nothing to authorise.

/// Google's OAuth endpoints and rules (also the token URL the client uses).
pub(crate) const SPEC: csal_oauth::OAuthProviderSpec = csal_oauth::OAuthProviderSpec {
    provider_type: "gdrive",
    authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
    token_url: "https://oauth2.googleapis.com/token",
    url_params: &[],
    scopes: "https://www.googleapis.com/auth/drive",
    scope_key: None,
    extra_params: &[("access_type", "offline"), ("prompt", "consent")],
    client_id_key: "client_id",
    client_secret_key: Some("client_secret"),
    authorize_url_key: None,
    token_url_key: Some("token_url"),
    refresh_token_lifetime: None,
    saves_refresh_expiry: false,
    not_with_keys: &["service_account_json"],
};

csal_oauth::inventory::submit! { SPEC }
