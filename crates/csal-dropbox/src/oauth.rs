//! The authorization-code flow of Dropbox, for `csal module authorize` and
//! the admin UI's Authorize button (Dropbox OAuth guide,
//! <https://developers.dropbox.com/oauth-guide>: `/oauth2/authorize` with
//! `token_access_type=offline` for a refresh token, PKCE S256, code exchange
//! at `/oauth2/token`). Scopes are left to the app's Permissions tab.

/// Dropbox's OAuth endpoints and rules (also the token URL the client uses).
pub(crate) const SPEC: csal_oauth::OAuthProviderSpec = csal_oauth::OAuthProviderSpec {
    provider_type: "dropbox",
    authorize_url: "https://www.dropbox.com/oauth2/authorize",
    token_url: "https://api.dropboxapi.com/oauth2/token",
    url_params: &[],
    scopes: "",
    scope_key: None,
    extra_params: &[("token_access_type", "offline")],
    client_id_key: "app_key",
    client_secret_key: Some("app_secret"),
    authorize_url_key: None,
    token_url_key: Some("token_url"),
    refresh_token_lifetime: None,
    saves_refresh_expiry: false,
    not_with_keys: &[],
};

csal_oauth::inventory::submit! { SPEC }
