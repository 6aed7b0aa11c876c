//! Box's authorization-code flow, for `csal module authorize` and the admin
//! UI's Authorize button ("Authorize user" and "Request access token" in the
//! Box API reference, <https://developer.box.com/reference/get-authorize/>:
//! `account.box.com/api/oauth2/authorize`; scopes come from the app's
//! configuration; refresh tokens are single-use and last 60 days).

/// Box's OAuth endpoints and rules (also the token URL the client uses).
pub(crate) const SPEC: csal_oauth::OAuthProviderSpec = csal_oauth::OAuthProviderSpec {
    provider_type: "box",
    authorize_url: "https://account.box.com/api/oauth2/authorize",
    token_url: "https://api.box.com/oauth2/token",
    url_params: &[],
    scopes: "",
    scope_key: None,
    extra_params: &[],
    client_id_key: "client_id",
    client_secret_key: Some("client_secret"),
    authorize_url_key: None,
    token_url_key: Some("token_url"),
    refresh_token_lifetime: Some(std::time::Duration::from_secs(60 * 24 * 3600)),
    saves_refresh_expiry: true,
    // Client Credentials Grant instances have no user to authorise.
    not_with_keys: &["box_subject_id"],
};

csal_oauth::inventory::submit! { SPEC }
