//! `azure_blob` instance config, its field spec, validation and the
//! connection-string parser.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use csal_core::{ExposeSecret, Result, SecretString, StorageError, Timeouts};
use csal_oauth::TokenManager;

/// Azure's largest block (4000 MiB); we cap far lower to bound memory.
const MAX_BLOCK_KIB: usize = 256 * 1024;

/// How an `azure_blob` instance authorises its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AzureAuth {
    /// The storage account's own keys: `account_key`, `sas_token` or
    /// `connection_string`.
    SharedKey,
    /// An Entra ID app registration (`tenant_id`, `client_id`,
    /// `client_secret`): OAuth 2.0 client-credentials tokens.
    ClientSecret,
    /// The managed identity of the Azure VM, container or App Service this
    /// runs on (system-assigned, or the user-assigned `client_id`).
    ManagedIdentity,
}

/// Entra ID's public authority host.
const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// Azure Instance Metadata Service (link-local, reachable only from inside Azure).
const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The audience of tokens for Azure Storage.
const STORAGE_RESOURCE: &str = "https://storage.azure.com/";

/// Config of an `azure_blob` instance.
#[csal_core::config(
    provider = "azure_blob",
    name = "Azure Blob Storage",
    category = object_storage,
    description = "Azure Blob Storage containers: staged block uploads, SAS URLs; account key, SAS or connection string.",
    timeouts(connect = 10, request = 120, read = 60),
    tls
)]
#[derive(Clone)]
pub struct AzureBlobConfig {
    /// Account name. Not needed with a connection string.
    #[field(
        label = "Storage account",
        credential_target,
        doc_url = "https://learn.microsoft.com/en-us/azure/storage/common/storage-account-overview"
    )]
    pub account: Option<String>,
    /// Name of an existing container.
    #[field(label = "Container")]
    pub container: String,
    /// Base64 access key of the account (Shared Key). Also signs the URLs of presign_read.
    #[field(
        label = "Account key",
        doc_url = "https://learn.microsoft.com/en-us/azure/storage/common/storage-account-keys-manage"
    )]
    pub account_key: Option<SecretString>,
    /// A SAS token with read, write, delete and list permissions, instead of the account key.
    #[field(
        label = "SAS token",
        doc_url = "https://learn.microsoft.com/en-us/azure/storage/common/storage-sas-overview"
    )]
    pub sas_token: Option<SecretString>,
    /// The account's connection string (holds the key or a SAS); replaces account, key and endpoint.
    #[field(
        label = "Connection string",
        doc_url = "https://learn.microsoft.com/en-us/azure/storage/common/storage-configure-connection-string"
    )]
    pub connection_string: Option<SecretString>,
    /// shared_key: the account key, SAS token or connection string above. client_secret: an Entra ID app registration. managed_identity: the identity of the Azure host this runs on. The app or identity needs a Storage Blob Data role on the container.
    #[field(
        label = "Authentication",
        select = ["shared_key", "client_secret", "managed_identity"],
        default = "shared_key",
        doc_url = "https://learn.microsoft.com/en-us/azure/storage/blobs/authorize-access-azure-active-directory"
    )]
    pub auth: AzureAuth,
    /// client_secret: the directory (tenant) ID or domain of the app registration.
    #[field(label = "Tenant ID")]
    pub tenant_id: Option<String>,
    /// client_secret: the app's application (client) ID. managed_identity: the client ID of a user-assigned identity (empty: the system-assigned one).
    #[field(label = "Client ID")]
    pub client_id: Option<String>,
    /// client_secret: a client secret of the app registration.
    #[field(
        label = "Client secret",
        doc_url = "https://learn.microsoft.com/en-us/entra/identity-platform/how-to-add-credentials"
    )]
    pub client_secret: Option<SecretString>,
    /// client_secret: the Entra ID authority. Default https://login.microsoftonline.com (sovereign clouds: their own host).
    #[field(label = "Authority host", url, credential_target)]
    pub authority_host: Option<String>,
    /// managed_identity: the metadata service. Default http://169.254.169.254 (Azure IMDS).
    #[field(label = "Managed identity endpoint", url, credential_target)]
    pub imds_endpoint: Option<String>,
    /// Default https://ACCOUNT.blob.core.windows.net. Azurite: http://127.0.0.1:10000/devstoreaccount1
    #[field(label = "Blob endpoint", url, credential_target)]
    pub endpoint: Option<String>,
    /// Bodies larger than this are uploaded as staged blocks of this size. Memory per upload is about twice this.
    #[field(
        label = "Block size (KiB)",
        default = 8192,
        doc_url = "https://learn.microsoft.com/en-us/rest/api/storageservices/put-block"
    )]
    pub block_size_kib: usize,
    /// How often one block upload, block list commit or one-shot Put Blob is tried before the write fails.
    #[field(label = "Block attempts", default = 4)]
    pub block_attempts: u32,
    /// Blocks in flight per upload. Memory per upload is about block size x (this + 1).
    #[field(label = "Parallel block uploads", default = 4)]
    pub upload_concurrency: usize,
}

/// How requests are authorised.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// Shared Key: HMAC-SHA256 with the decoded account key.
    SharedKey { key: SecretBytes },
    /// A SAS token appended to every URL (without a leading `?`).
    Sas { token: SecretString },
    /// Entra ID bearer tokens, fetched and renewed before expiry.
    Bearer { tokens: Arc<TokenManager> },
}

/// Key bytes that never show in `Debug`.
#[derive(Clone)]
pub(crate) struct SecretBytes(pub Vec<u8>);
impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(csal_core::secret::MASK)
    }
}

/// The checked, defaulted settings a module runs with.
#[derive(Clone)]
pub(crate) struct Settings {
    pub account: String,
    pub container: String,
    /// Root without a trailing slash; the container follows it.
    pub endpoint: String,
    pub credentials: Credentials,
    pub block_size: usize,
    pub timeouts: Timeouts,
    /// The whole-request limit of non-streaming requests.
    pub request_timeout: Duration,
    pub block_attempts: u32,
    pub upload_concurrency: usize,
    pub ca_file: Option<csal_core::tls::CaFile>,
}

fn invalid(field: &str, why: &str) -> StorageError {
    StorageError::invalid_config(format!("field '{field}': {why}")).with_provider("azure_blob")
}

/// The well-known Azurite account and key (public, documented by Microsoft).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEV_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// What a connection string gave us.
#[derive(Default)]
struct ConnectionParts {
    account: Option<String>,
    key: Option<String>,
    sas: Option<String>,
    endpoint: Option<String>,
}

fn parse_connection_string(text: &str) -> Result<ConnectionParts> {
    let field = "connection_string";
    let mut parts = ConnectionParts::default();
    let (mut protocol, mut suffix) = ("https".to_owned(), "core.windows.net".to_owned());
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(invalid(field, "must be a list of Key=Value pairs separated by ';'"));
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "usedevelopmentstorage" if v.trim().eq_ignore_ascii_case("true") => {
                parts.account = Some(DEV_ACCOUNT.to_owned());
                parts.key = Some(DEV_KEY.to_owned());
                parts.endpoint = Some(DEV_ENDPOINT.to_owned());
            }
            "accountname" => parts.account = Some(v.trim().to_owned()),
            "accountkey" => parts.key = Some(v.trim().to_owned()),
            "sharedaccesssignature" => parts.sas = Some(v.trim().to_owned()),
            "blobendpoint" => parts.endpoint = Some(v.trim().trim_end_matches('/').to_owned()),
            "defaultendpointsprotocol" => protocol = v.trim().to_owned(),
            "endpointsuffix" => suffix = v.trim().to_owned(),
            _ => {}
        }
    }
    if parts.endpoint.is_none()
        && let Some(account) = &parts.account
    {
        parts.endpoint = Some(format!("{protocol}://{account}.blob.{suffix}"));
    }
    if parts.key.is_none() && parts.sas.is_none() {
        return Err(invalid(field, "has neither AccountKey nor SharedAccessSignature"));
    }
    Ok(parts)
}

/// A token endpoint's base URL: https, or http to a loopback or
/// link-local address (IMDS, local fakes), without a trailing slash.
fn token_host(field: &str, given: Option<String>, default: &str) -> Result<String> {
    let url = given.unwrap_or_else(|| default.to_owned());
    let parsed = reqwest::Url::parse(&url).map_err(|_| invalid(field, "must be an http:// or https:// URL"))?;
    let local = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_link_local(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => return Err(invalid(field, "must be an http:// or https:// URL")),
    };
    match parsed.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err(invalid(field, "must be https:// (http:// only to a loopback or link-local address)")),
    }
    if parsed.query().is_some() {
        return Err(invalid(field, "must be a URL without a query"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn decode_key(text: &str, field: &str) -> Result<SecretBytes> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .filter(|k| !k.is_empty())
        .map(SecretBytes)
        .ok_or_else(|| invalid(field, "must be the base64 account key"))
}

impl AzureBlobConfig {
    pub(crate) fn settings(&self) -> Result<Settings> {
        let mut account = self.account.clone().map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
        let mut endpoint = self.endpoint.clone().map(|e| e.trim().trim_end_matches('/').to_owned());
        let credentials = match self.auth {
            AzureAuth::SharedKey => self.shared_key(&mut account, &mut endpoint)?,
            AzureAuth::ClientSecret | AzureAuth::ManagedIdentity => self.token_credential()?,
        };
        let account = account.ok_or_else(|| invalid("account", "is required (or give a connection string)"))?;
        if !(3..=24).contains(&account.len()) || !account.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        {
            return Err(invalid("account", "must be 3-24 lowercase letters and digits"));
        }
        let container = self.container.trim().to_owned();
        let container_ok = (3..=63).contains(&container.len())
            && container.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !container.starts_with('-')
            && !container.ends_with('-')
            && !container.contains("--");
        if !container_ok {
            return Err(invalid("container", "must be 3-63 lowercase letters, digits and single hyphens"));
        }
        let endpoint = endpoint.unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
        match reqwest::Url::parse(&endpoint) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none() => {
                if matches!(credentials, Credentials::Bearer { .. }) && u.scheme() != "https" {
                    return Err(invalid(
                        "endpoint",
                        "must be https:// with Entra ID tokens (bearer tokens never travel in clear)",
                    ));
                }
            }
            _ => return Err(invalid("endpoint", "must be an http:// or https:// URL without a query")),
        }
        let block_kib = self.block_size_kib;
        if block_kib == 0 || block_kib > MAX_BLOCK_KIB {
            return Err(invalid("block_size_kib", &format!("must be between 1 and {MAX_BLOCK_KIB}")));
        }
        if !(1..=64).contains(&self.upload_concurrency) {
            return Err(invalid("upload_concurrency", "must be between 1 and 64"));
        }
        let timeouts = self.timeouts()?;
        Ok(Settings {
            account,
            container,
            endpoint,
            credentials,
            block_size: block_kib * 1024,
            request_timeout: timeouts.request.expect("azure_blob has request_timeout_secs"),
            timeouts,
            block_attempts: self.block_attempts.max(1),
            upload_concurrency: self.upload_concurrency,
            ca_file: self.trusted_ca()?,
        })
    }

    /// `auth = "shared_key"`: exactly one of the account's keys; a
    /// connection string may also give the account and endpoint.
    fn shared_key(&self, account: &mut Option<String>, endpoint: &mut Option<String>) -> Result<Credentials> {
        self.only_with(
            "auth = client_secret or managed_identity",
            &[
                ("tenant_id", self.tenant_id.is_some()),
                ("client_id", self.client_id.is_some()),
                ("client_secret", self.client_secret.is_some()),
                ("authority_host", self.authority_host.is_some()),
                ("imds_endpoint", self.imds_endpoint.is_some()),
            ],
        )?;
        let given = |s: &Option<SecretString>| {
            s.as_ref().map(|v| v.expose_secret().trim().to_owned()).filter(|v| !v.is_empty())
        };
        let (key, sas, conn) = (given(&self.account_key), given(&self.sas_token), given(&self.connection_string));
        let sources = [key.is_some(), sas.is_some(), conn.is_some()].iter().filter(|b| **b).count();
        if sources != 1 {
            return Err(invalid("account_key", "give exactly one of account_key, sas_token or connection_string"));
        }
        Ok(if let Some(conn) = conn {
            let parts = parse_connection_string(&conn)?;
            if account.is_none() {
                *account = parts.account;
            }
            if endpoint.is_none() {
                *endpoint = parts.endpoint;
            }
            match (parts.key, parts.sas) {
                (Some(k), _) => Credentials::SharedKey { key: decode_key(&k, "connection_string")? },
                (None, Some(s)) => Credentials::Sas { token: SecretString::from(s.trim_start_matches('?').to_owned()) },
                (None, None) => unreachable!("checked by the parser"),
            }
        } else if let Some(k) = key {
            Credentials::SharedKey { key: decode_key(&k, "account_key")? }
        } else {
            let token = sas.unwrap_or_default();
            let token = token.trim_start_matches('?').to_owned();
            if !token.contains("sig=") {
                return Err(invalid("sas_token", "is not a SAS token (no sig= parameter)"));
            }
            Credentials::Sas { token: SecretString::from(token) }
        })
    }

    /// `auth = "client_secret"` or `"managed_identity"`: a token manager
    /// for the storage audience (no network I/O until the first request).
    fn token_credential(&self) -> Result<Credentials> {
        let text =
            |field: &Option<String>| field.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        self.only_with(
            "auth = shared_key",
            &[
                ("account_key", self.account_key.is_some()),
                ("sas_token", self.sas_token.is_some()),
                ("connection_string", self.connection_string.is_some()),
            ],
        )?;
        let tokens = if self.auth == AzureAuth::ClientSecret {
            self.only_with("auth = managed_identity", &[("imds_endpoint", self.imds_endpoint.is_some())])?;
            let tenant =
                text(&self.tenant_id).ok_or_else(|| invalid("tenant_id", "is required with auth = client_secret"))?;
            if !tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                return Err(invalid("tenant_id", "must be a tenant ID (GUID) or domain name"));
            }
            let client_id =
                text(&self.client_id).ok_or_else(|| invalid("client_id", "is required with auth = client_secret"))?;
            let secret = self
                .client_secret
                .clone()
                .filter(|s| !s.expose_secret().trim().is_empty())
                .ok_or_else(|| invalid("client_secret", "is required with auth = client_secret"))?;
            let authority = token_host("authority_host", text(&self.authority_host), DEFAULT_AUTHORITY_HOST)?;
            TokenManager::client_credentials(
                format!("{authority}/{tenant}/oauth2/v2.0/token"),
                client_id,
                secret,
                vec![("scope".into(), format!("{}.default", STORAGE_RESOURCE))],
            )?
        } else {
            self.only_with(
                "auth = client_secret",
                &[
                    ("tenant_id", self.tenant_id.is_some()),
                    ("client_secret", self.client_secret.is_some()),
                    ("authority_host", self.authority_host.is_some()),
                ],
            )?;
            let imds = token_host("imds_endpoint", text(&self.imds_endpoint), DEFAULT_IMDS_ENDPOINT)?;
            let mut url = reqwest::Url::parse(&format!("{imds}/metadata/identity/oauth2/token"))
                .map_err(|_| invalid("imds_endpoint", "must be an http:// or https:// URL"))?;
            url.query_pairs_mut().append_pair("api-version", "2018-02-01").append_pair("resource", STORAGE_RESOURCE);
            if let Some(client_id) = text(&self.client_id) {
                url.query_pairs_mut().append_pair("client_id", &client_id);
            }
            TokenManager::metadata_service(url.into(), vec![("Metadata".into(), "true".into())])?
        };
        // The token service may sit behind the same private CA (Azure Stack Hub).
        let tokens = tokens.with_ca_file(self.trusted_ca()?.as_ref())?;
        Ok(Credentials::Bearer { tokens: Arc::new(tokens) })
    }

    /// Fields set that only `mode` uses are an error naming the first one.
    fn only_with(&self, mode: &str, fields: &[(&str, bool)]) -> Result<()> {
        match fields.iter().find(|(_, set)| *set) {
            Some((field, _)) => Err(invalid(field, &format!("is only used with {mode}"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: serde_json::Value) -> Result<Settings> {
        csal_core::parse_config::<AzureBlobConfig>("azure_blob", &v)?.settings()
    }

    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<AzureBlobConfig>();
    }

    #[test]
    fn development_storage_connection_string_points_at_azurite() {
        let s = settings(json!({"container": "abc", "connection_string": "UseDevelopmentStorage=true"})).unwrap();
        assert_eq!(s.account, DEV_ACCOUNT);
        assert_eq!(s.endpoint, DEV_ENDPOINT);
        assert!(matches!(s.credentials, Credentials::SharedKey { .. }));
    }

    #[test]
    fn connection_string_with_account_builds_the_public_endpoint() {
        let cs = "DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey=a2V5;EndpointSuffix=core.windows.net";
        let s = settings(json!({"container": "abc", "connection_string": cs})).unwrap();
        assert_eq!(s.endpoint, "https://myacct.blob.core.windows.net");
        let cs = "BlobEndpoint=https://myacct.blob.core.windows.net/;SharedAccessSignature=sv=2022&sig=abc";
        let s = settings(json!({"container": "abc", "account": "myacct", "connection_string": cs})).unwrap();
        assert!(matches!(s.credentials, Credentials::Sas { .. }));
    }

    #[test]
    fn exactly_one_credential_is_required() {
        let e = settings(json!({"container": "abc", "account": "acct"})).err().unwrap();
        assert!(e.message().contains("account_key"), "{e}");
        let e = settings(json!({"container": "abc", "account": "acct", "account_key": "a2V5", "sas_token": "sig=x"}))
            .err()
            .unwrap();
        assert!(e.message().contains("exactly one"), "{e}");
    }

    #[test]
    fn malformed_values_name_the_field_without_echoing_secrets() {
        let e = settings(json!({"container": "abc", "account": "acct", "account_key": "!!TOPSECRET!!"})).err().unwrap();
        assert!(e.message().contains("account_key") && !format!("{e:?}").contains("TOPSECRET"), "{e}");
        let e = settings(json!({"container": "abc", "connection_string": "TOPSECRET"})).err().unwrap();
        assert!(e.message().contains("connection_string") && !format!("{e:?}").contains("TOPSECRET"), "{e}");
        let e = settings(json!({"container": "Bad_Name", "account": "acct", "account_key": "a2V5"})).err().unwrap();
        assert!(e.message().contains("container"), "{e}");
        let e = settings(json!({"container": "abc", "account": "acct", "account_key": "a2V5", "block_size_kib": 0}))
            .err()
            .unwrap();
        assert!(e.message().contains("block_size_kib"), "{e}");
    }
}
