//! `TokenManager::metadata_service` against csal-fakes' Azure IMDS fake:
//! the `Metadata: true` header, `expires_in` sent as a string, one fetch
//! for many callers, and a refusal classified as `Auth`.

use std::sync::Arc;

use csal_core::{ErrorKind, ExposeSecret};
use csal_fakes::entra::EntraFake;
use csal_oauth::TokenManager;

const MANAGED: &str = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d";

async fn fake() -> EntraFake {
    EntraFake::start("tenant-1", "app-1", "secret-1", MANAGED).await
}

fn url(fake: &EntraFake, client_id: Option<&str>) -> String {
    let mut url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com%2F",
        fake.imds_endpoint()
    );
    if let Some(id) = client_id {
        url.push_str(&format!("&client_id={id}"));
    }
    url
}

fn metadata_header() -> Vec<(String, String)> {
    vec![("Metadata".into(), "true".into())]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_share_one_token_with_a_string_lifetime() {
    let fake = fake().await;
    let tokens = Arc::new(TokenManager::metadata_service(url(&fake, Some(MANAGED)), metadata_header()).unwrap());
    let tasks = (0..16).map(|_| {
        let tokens = tokens.clone();
        tokio::spawn(async move { tokens.access_token().await.map(|t| t.expose_secret().to_owned()) })
    });
    let got: Vec<String> = futures::future::join_all(tasks).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert!(got.iter().all(|t| t == &got[0] && t.split('.').count() == 3), "one JWT-shaped token for all");
    assert_eq!(fake.issued(), 1, "cached: expires_in (a string) was understood as an hour");
    tokens.force_refresh().await.unwrap();
    assert_eq!(fake.issued(), 2);
}

#[tokio::test]
async fn refusals_of_the_metadata_service_are_auth() {
    let fake = fake().await;
    let unknown = TokenManager::metadata_service(url(&fake, Some("not-assigned")), metadata_header()).unwrap();
    let err = unknown.access_token().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(err.message().contains("managed identity"), "{err}");
    let no_header = TokenManager::metadata_service(url(&fake, None), Vec::new()).unwrap();
    assert_eq!(no_header.access_token().await.unwrap_err().kind(), ErrorKind::Auth);
    assert_eq!(fake.issued(), 0);
}
