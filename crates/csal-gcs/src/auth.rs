//! Access tokens (yup-oauth2) and the RSA key that signs V4 URLs.
//!
//! Nothing here touches the network at construction: the authenticator is
//! built on first use, so the registry's factory stays non-blocking. The
//! shape of a key JSON is checked in `config.rs` (`InvalidConfig`); a key
//! whose private key cannot sign, or that the token endpoint refuses, is a
//! credentials problem (`Auth`).

use std::time::Duration;

use base64::Engine as _;
use csal_core::{ExposeSecret, Result, StorageError};
use tokio::sync::OnceCell;
use yup_oauth2::authenticator::DefaultAuthenticator;

use crate::config::{CredentialSource, KeyJson, KeyKind};
use crate::error;

/// Scope for reading and writing objects.
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";

pub(crate) struct TokenSource {
    source: CredentialSource,
    timeout: Duration,
    authenticator: OnceCell<DefaultAuthenticator>,
}

impl TokenSource {
    pub(crate) fn new(source: CredentialSource, timeout: Duration) -> Self {
        TokenSource { source, timeout, authenticator: OnceCell::new() }
    }

    pub(crate) fn is_anonymous(&self) -> bool {
        matches!(self.source, CredentialSource::Anonymous)
    }

    /// A bearer token, or `None` in anonymous mode.
    pub(crate) async fn token(&self) -> Result<Option<String>> {
        if self.is_anonymous() {
            return Ok(None);
        }
        let auth = self.authenticator.get_or_try_init(|| self.build()).await?;
        let token = auth.token(&[SCOPE]).await.map_err(error::from_auth)?;
        match token.token() {
            Some(t) => Ok(Some(t.to_owned())),
            None => Err(StorageError::auth("the token endpoint returned no access token")),
        }
    }

    async fn build(&self) -> Result<DefaultAuthenticator> {
        use yup_oauth2::authenticator::{ApplicationDefaultCredentialsTypes, AuthorizedUserAuthenticator};
        use yup_oauth2::{ApplicationDefaultCredentialsAuthenticator, ApplicationDefaultCredentialsFlowOpts};
        let unusable = |field: &str, e: std::io::Error| {
            StorageError::auth(format!("the credentials in '{field}' cannot be used: check the key file"))
                .with_source(e)
        };
        match &self.source {
            CredentialSource::Anonymous => unreachable!("anonymous mode never builds an authenticator"),
            CredentialSource::Key(key) if key.kind == KeyKind::ServiceAccount => {
                let parsed = yup_oauth2::parse_service_account_key(key.raw.expose_secret().as_bytes())
                    .map_err(|e| unusable(key.field, e))?;
                yup_oauth2::ServiceAccountAuthenticator::builder(parsed)
                    .with_timeout(self.timeout)
                    .build()
                    .await
                    .map_err(|e| unusable(key.field, e))
            }
            CredentialSource::Key(key) => {
                let secret: yup_oauth2::authorized_user::AuthorizedUserSecret =
                    serde_json::from_str(key.raw.expose_secret())
                        .map_err(|e| unusable(key.field, std::io::Error::other(e)))?;
                AuthorizedUserAuthenticator::builder(secret)
                    .with_timeout(self.timeout)
                    .build()
                    .await
                    .map_err(|e| unusable(key.field, e))
            }
            CredentialSource::ApplicationDefault => {
                let built = match ApplicationDefaultCredentialsAuthenticator::builder(
                    ApplicationDefaultCredentialsFlowOpts::default(),
                )
                .await
                {
                    ApplicationDefaultCredentialsTypes::ServiceAccount(b) => b.with_timeout(self.timeout).build().await,
                    ApplicationDefaultCredentialsTypes::InstanceMetadata(b) => {
                        b.with_timeout(self.timeout).build().await
                    }
                };
                built.map_err(|e| {
                    StorageError::auth(
                        "application default credentials are not usable (GOOGLE_APPLICATION_CREDENTIALS or the metadata server)",
                    )
                    .with_source(e)
                })
            }
        }
    }
}

/// The RSA key of a service account, for V4 signed URLs.
pub(crate) struct UrlSigner {
    pub client_email: String,
    key: aws_lc_rs::signature::RsaKeyPair,
}

impl UrlSigner {
    /// Load the key of a service-account JSON. `Auth` when the private key is
    /// not a usable RSA key (the JSON's shape was checked with the config).
    pub(crate) fn from_key(key: &KeyJson) -> Result<UrlSigner> {
        let unusable =
            |why: &str| StorageError::auth(format!("the private_key in '{}' {why}: check the key file", key.field));
        let value: serde_json::Value =
            serde_json::from_str(key.raw.expose_secret()).map_err(|_| unusable("is not readable"))?;
        let pem = value["private_key"].as_str().ok_or_else(|| unusable("is missing"))?;
        let der = pem_to_der(pem).ok_or_else(|| unusable("is not a PEM private key"))?;
        let key_pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
            .map_err(|_| unusable("is not an RSA key in PKCS#8 form"))?;
        Ok(UrlSigner { client_email: key.client_email.clone().unwrap_or_default(), key: key_pair })
    }

    /// RSA-SHA256 (PKCS#1 v1.5) signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.key
            .sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, message, &mut signature)
            .map_err(|_| StorageError::auth("signing with the service-account key failed"))?;
        Ok(signature)
    }
}

#[cfg(test)]
impl UrlSigner {
    pub(crate) fn public_key_der(&self) -> Vec<u8> {
        use aws_lc_rs::signature::KeyPair;
        self.key.public_key().as_ref().to_vec()
    }
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlSigner").field("client_email", &self.client_email).finish_non_exhaustive()
    }
}

/// The DER bytes of a `-----BEGIN PRIVATE KEY-----` PEM block.
fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    let begin = pem.find("-----BEGIN PRIVATE KEY-----")?;
    let rest = &pem[begin + "-----BEGIN PRIVATE KEY-----".len()..];
    let end = rest.find("-----END PRIVATE KEY-----")?;
    let body: String = rest[..end].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use csal_core::{ErrorKind, SecretString};

    /// A fresh service-account key JSON with a real (throwaway) RSA key.
    pub(crate) fn throwaway_key_json(token_uri: &str) -> String {
        let pair = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der = pair.as_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
        serde_json::json!({
            "type": "service_account",
            "client_email": "csal-test@example-project.iam.gserviceaccount.com",
            "private_key": pem,
            "token_uri": token_uri,
        })
        .to_string()
    }

    fn key(json: String) -> KeyJson {
        KeyJson {
            raw: SecretString::from(json),
            kind: KeyKind::ServiceAccount,
            client_email: Some("csal-test@example-project.iam.gserviceaccount.com".into()),
            field: "credentials_json",
        }
    }

    #[test]
    fn a_real_key_signs() {
        let signer = UrlSigner::from_key(&key(throwaway_key_json("https://oauth2.googleapis.com/token"))).unwrap();
        assert_eq!(signer.sign(b"hello").unwrap().len(), 256);
    }

    #[test]
    fn an_unusable_private_key_is_an_auth_error_without_the_key() {
        let json = serde_json::json!({
            "type": "service_account", "client_email": "a@b", "token_uri": "https://oauth2.googleapis.com/token",
            "private_key": "-----BEGIN PRIVATE KEY-----\nTOPSECRETnotakey\n-----END PRIVATE KEY-----\n",
        });
        let e = UrlSigner::from_key(&key(json.to_string())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(!format!("{e} {e:?}").contains("TOPSECRET"));
    }

    #[tokio::test]
    async fn token_with_an_unusable_private_key_is_an_auth_error() {
        let json = serde_json::json!({
            "type": "service_account", "client_email": "a@b", "token_uri": "https://oauth2.googleapis.com/token",
            "private_key": "-----BEGIN PRIVATE KEY-----\nTOPSECRETnotakey\n-----END PRIVATE KEY-----\n",
        });
        let source = TokenSource::new(CredentialSource::Key(key(json.to_string())), Duration::from_secs(5));
        let e = source.token().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
        assert!(!format!("{e} {e:?}").contains("TOPSECRET"));
    }
}
