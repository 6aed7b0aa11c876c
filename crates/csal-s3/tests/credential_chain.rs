//! `credentials = "default_chain"` (the AWS default credential chain) on
//! s3s-fs, which checks SigV4 signatures: a working round trip proves the
//! chain's keys signed the requests (moto checks none, so it cannot tell).
//!
//! The chain also reads the process environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI`, ...). These tests set it, which is
//! safe because nextest (what `cargo xtask` runs) gives every test its own
//! process; the library itself never writes the environment.

#![cfg_attr(not(feature = "aws-config"), allow(dead_code, unused_imports))]

csal_core::link_providers!(csal_s3);

mod common;

use std::path::Path;

use common::{BUCKET, Server};
use csal_fakes::aws_metadata::AwsMetadataFake;
use csal_s3::{S3Config, S3Module};

#[cfg(not(feature = "aws-config"))]
#[test]
fn default_chain_without_the_feature_is_a_config_error_naming_it() {
    let config = serde_json::json!({"bucket": BUCKET, "credentials": "default_chain"});
    let config: S3Config = csal_core::parse_config("s3", &config).unwrap();
    let err = S3Module::new(config).unwrap_err();
    assert_eq!(err.kind(), csal_core::ErrorKind::InvalidConfig);
    assert!(err.message().contains("aws-config") && err.message().contains("credentials"), "{err}");
}

/// Nothing from the machine running the test: no keys or profile in the
/// environment, no container endpoint, IMDS off unless a test turns it on.
fn isolate_environment() {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    ] {
        // SAFETY: each test runs in its own process under nextest, before
        // any thread that reads the environment exists.
        unsafe { std::env::remove_var(var) };
    }
    set_env("AWS_EC2_METADATA_DISABLED", "true");
}

fn set_env(var: &str, value: &str) {
    // SAFETY: as in `isolate_environment`.
    unsafe { std::env::set_var(var, value) };
}

/// An `s3` instance on `server` whose credentials come from the chain.
fn chain_module(server: &Server, settings: serde_json::Value) -> S3Module {
    let mut config = serde_json::json!({
        "bucket": BUCKET,
        "region": server.region,
        "endpoint": server.endpoint,
        "force_path_style": true,
        "credentials": "default_chain",
    });
    config.as_object_mut().unwrap().extend(settings.as_object().unwrap().clone());
    let config: S3Config = csal_core::parse_config("s3", &config).expect("config parses");
    S3Module::new(config).expect("valid chain config")
}

/// s3s-fs with the test bucket, a clean environment and a folder for
/// profile files; `None` (reported) without s3s-fs.
async fn setup(label: &str) -> Option<(Server, tempfile::TempDir)> {
    let server = Server::s3sfs(label)?;
    isolate_environment();
    server.ensure_bucket(BUCKET).await;
    Some((server, tempfile::tempdir().unwrap()))
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[cfg(feature = "aws-config")]
#[tokio::test]
async fn profile_named_in_the_config_signs_with_its_keys() {
    let Some((server, dir)) = setup("s3 default_chain profile@s3s-fs").await else { return };
    let credentials = write_file(
        dir.path(),
        "credentials",
        &format!(
            "[default]\naws_access_key_id = not-this-one\naws_secret_access_key = not-this-either\n\n\
             [csal-archive]\naws_access_key_id = {}\naws_secret_access_key = {}\n\n\
             [csal-wrong]\naws_access_key_id = {}\naws_secret_access_key = wrong-secret-from-profile\n",
            server.access_key, server.secret_key, server.access_key
        ),
    );
    let config = write_file(dir.path(), "config", "");
    let files = serde_json::json!({"credentials_file": credentials, "config_file": config});
    let with_profile = |name: &str| {
        let mut settings = files.clone();
        settings["profile"] = serde_json::json!(name);
        chain_module(&server, settings)
    };

    csal_testkit::credentials::write_read_list_delete(&with_profile("csal-archive"), "chain-profile").await;

    // The keys of another profile are refused by the server's signature check.
    csal_testkit::credentials::refused_write_is_auth(&with_profile("csal-wrong"), &["wrong-secret-from-profile"]).await;

    // A profile that is not there: the chain finds nothing, which is Auth
    // (someone must set credentials up), not a transient connection error.
    let err = csal_testkit::credentials::refused_write_is_auth(&with_profile("no-such-profile"), &[]).await;
    assert!(err.message().contains("credential"), "{err}");
}

#[cfg(feature = "aws-config")]
#[tokio::test]
async fn profile_files_from_the_environment_are_read_when_the_config_names_none() {
    let Some((server, dir)) = setup("s3 default_chain AWS_SHARED_CREDENTIALS_FILE@s3s-fs").await else { return };
    let credentials = write_file(
        dir.path(),
        "credentials",
        &format!(
            "[from-env]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            server.access_key, server.secret_key
        ),
    );
    set_env("AWS_SHARED_CREDENTIALS_FILE", &credentials);
    set_env("AWS_CONFIG_FILE", &write_file(dir.path(), "config", ""));
    set_env("AWS_PROFILE", "from-env");
    csal_testkit::credentials::write_read_list_delete(&chain_module(&server, serde_json::json!({})), "chain-env").await;
}

#[cfg(feature = "aws-config")]
#[tokio::test]
async fn instance_metadata_credentials_sign_requests() {
    let Some((server, dir)) = setup("s3 default_chain IMDS@s3s-fs").await else { return };
    set_env("AWS_EC2_METADATA_DISABLED", "false");
    let imds = AwsMetadataFake::start(&server.access_key, &server.secret_key, "-").await;
    let wrong = AwsMetadataFake::start(&server.access_key, "wrong-secret-from-imds", "-").await;
    // A profile without keys whose IMDS endpoint is the fake: the chain
    // passes the profile and web identity and ends at instance metadata.
    let config = write_file(
        dir.path(),
        "config",
        &format!(
            "[profile on-ec2]\nec2_metadata_service_endpoint = {}\n\n[profile on-wrong-ec2]\nec2_metadata_service_endpoint = {}\n",
            imds.imds_endpoint(),
            wrong.imds_endpoint()
        ),
    );
    let credentials = write_file(dir.path(), "credentials", "");
    let module = |profile: &str| {
        chain_module(
            &server,
            serde_json::json!({"profile": profile, "credentials_file": credentials, "config_file": config}),
        )
    };

    let on_ec2 = module("on-ec2");
    csal_testkit::credentials::write_read_list_delete(&on_ec2, "chain-imds").await;
    assert_eq!(imds.served(), 1, "the SDK's identity cache asked IMDS once for all calls");

    csal_testkit::credentials::refused_write_is_auth(&module("on-wrong-ec2"), &["wrong-secret-from-imds"]).await;
    assert_eq!(wrong.served(), 1);
}

#[cfg(feature = "aws-config")]
#[tokio::test]
async fn container_credentials_endpoint_signs_requests() {
    let Some((server, dir)) = setup("s3 default_chain ECS@s3s-fs").await else { return };
    let ecs = AwsMetadataFake::start(&server.access_key, &server.secret_key, "csal-container-token").await;
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &ecs.ecs_uri());
    set_env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "csal-container-token");
    let files = serde_json::json!({
        "credentials_file": write_file(dir.path(), "credentials", ""),
        "config_file": write_file(dir.path(), "config", ""),
    });

    csal_testkit::credentials::write_read_list_delete(&chain_module(&server, files.clone()), "chain-ecs").await;
    assert_eq!(ecs.served(), 1);

    // The container agent refuses a wrong authorization token: Auth.
    set_env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "stale-token");
    csal_testkit::credentials::refused_write_is_auth(&chain_module(&server, files), &["stale-token"]).await;
    assert_eq!(ecs.served(), 1, "the refused request got no credentials");
}
