//! `azure_blob` instance config, its field spec, validation and the
//! connection-string parser.

use std::time::Duration;

use base64::Engine as _;
use csal_core::{ExposeSecret, Result, SecretString, StorageError, Timeouts};

/// Azure's largest block (4000 MiB); we cap far lower to bound memory.
const MAX_BLOCK_KIB: usize = 256 * 1024;

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
    /// How often one block upload is tried before the write fails.
    #[field(label = "Block attempts", default = 4)]
    pub block_attempts: u32,
}

/// How requests are authorised.
#[derive(Clone)]
pub(crate) enum Credentials {
    /// Shared Key: HMAC-SHA256 with the decoded account key.
    SharedKey { key: SecretBytes },
    /// A SAS token appended to every URL (without a leading `?`).
    Sas { token: SecretString },
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
    if parts.endpoint.is_none() {
        if let Some(account) = &parts.account {
            parts.endpoint = Some(format!("{protocol}://{account}.blob.{suffix}"));
        }
    }
    if parts.key.is_none() && parts.sas.is_none() {
        return Err(invalid(field, "has neither AccountKey nor SharedAccessSignature"));
    }
    Ok(parts)
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
        let given = |s: &Option<SecretString>| {
            s.as_ref().map(|v| v.expose_secret().trim().to_owned()).filter(|v| !v.is_empty())
        };
        let (key, sas, conn) = (given(&self.account_key), given(&self.sas_token), given(&self.connection_string));
        let sources = [key.is_some(), sas.is_some(), conn.is_some()].iter().filter(|b| **b).count();
        if sources != 1 {
            return Err(invalid("account_key", "give exactly one of account_key, sas_token or connection_string"));
        }
        let mut account = self.account.clone().map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
        let mut endpoint = self.endpoint.clone().map(|e| e.trim().trim_end_matches('/').to_owned());
        let credentials = if let Some(conn) = conn {
            let parts = parse_connection_string(&conn)?;
            account = account.or(parts.account);
            endpoint = endpoint.or(parts.endpoint);
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
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none() => {}
            _ => return Err(invalid("endpoint", "must be an http:// or https:// URL without a query")),
        }
        let block_kib = self.block_size_kib;
        if block_kib == 0 || block_kib > MAX_BLOCK_KIB {
            return Err(invalid("block_size_kib", &format!("must be between 1 and {MAX_BLOCK_KIB}")));
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
            ca_file: self.trusted_ca()?,
        })
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
