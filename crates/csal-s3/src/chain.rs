//! `credentials = "default_chain"`: the AWS SDK's default credential chain
//! (aws-config), with the instance's profile name and profile files.
//!
//! The chain is built on the first request, not in the factory: building it
//! reads profile files and the registry's factories must not do I/O. The
//! SDK client's identity cache then asks it again only when the
//! credentials near expiry (SSO, IMDS, ECS and web identity ones do).

use aws_config::BehaviorVersion;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_s3::config::Region;

use crate::config::S3Config;

/// The default chain, loaded once on first use.
#[derive(Debug)]
pub(crate) struct DefaultChain {
    region: String,
    profile: Option<String>,
    credentials_file: Option<String>,
    config_file: Option<String>,
    chain: tokio::sync::OnceCell<Option<SharedCredentialsProvider>>,
}

impl DefaultChain {
    pub(crate) fn new(config: &S3Config) -> Self {
        DefaultChain {
            region: config.region.clone(),
            profile: config.profile.clone(),
            credentials_file: config.credentials_file.clone(),
            config_file: config.config_file.clone(),
            chain: tokio::sync::OnceCell::new(),
        }
    }

    /// aws-config's loader, told the instance's settings explicitly (the
    /// rest, e.g. `AWS_ACCESS_KEY_ID` or the container credentials URI,
    /// comes from the process environment as the AWS CLI reads it).
    async fn load(&self) -> Option<SharedCredentialsProvider> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(self.region.clone()));
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if self.credentials_file.is_some() || self.config_file.is_some() {
            let mut files = EnvConfigFiles::builder();
            files = match &self.credentials_file {
                Some(path) => files.with_file(EnvConfigFileKind::Credentials, path),
                None => files.include_default_credentials_file(true),
            };
            files = match &self.config_file {
                Some(path) => files.with_file(EnvConfigFileKind::Config, path),
                None => files.include_default_config_file(true),
            };
            loader = loader.profile_files(files.build());
        }
        loader.load().await.credentials_provider()
    }
}

impl ProvideCredentials for DefaultChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            match self.chain.get_or_init(|| self.load()).await {
                Some(chain) => chain.provide_credentials().await,
                None => Err(CredentialsError::not_loaded("the AWS default chain has no credentials provider")),
            }
        })
    }
}
