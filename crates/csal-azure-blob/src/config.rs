//! `azure_blob` instance config, its field spec, validation and the
//! connection-string parser.

use std::time::Duration;

use base64::Engine as _;
use csal_core::{ConfigField, ExposeSecret, Result, SecretString, StorageError};

const DEFAULT_BLOCK_KIB: usize = 8 * 1024;
/// Azure's largest block (4000 MiB); we cap far lower to bound memory.
const MAX_BLOCK_KIB: usize = 256 * 1024;

/// Config of an `azure_blob` instance.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureBlobConfig {
    /// Storage account name (taken from the connection string when given).
    pub account: Option<String>,
    pub container: String,
    /// Base64 account key (Shared Key auth, and SAS URLs from `presign_read`).
    pub account_key: Option<SecretString>,
    /// A SAS token (`sv=...&sig=...`) with read/write/delete/list rights.
    pub sas_token: Option<SecretString>,
    /// A full connection string (`AccountName=...;AccountKey=...` or with
    /// `SharedAccessSignature=...`; `UseDevelopmentStorage=true` for Azurite).
    pub connection_string: Option<SecretString>,
    /// Blob service root: `https://ACCOUNT.blob.core.windows.net` by default;
    /// for Azurite `http://127.0.0.1:10000/devstoreaccount1` (path style).
    pub endpoint: Option<String>,
    /// Block size in KiB for staged uploads (default 8192).
    pub block_size_kib: Option<usize>,
    pub connect_timeout_secs: Option<u64>,
    pub request_timeout_secs: Option<u64>,
    pub read_timeout_secs: Option<u64>,
    /// How often a failed block upload is sent again before the write fails.
    pub block_attempts: Option<u32>,
}

impl std::fmt::Debug for AzureBlobConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let masked = |s: &Option<SecretString>| s.as_ref().map(|_| csal_core::secret::MASK);
        f.debug_struct("AzureBlobConfig")
            .field("account", &self.account)
            .field("container", &self.container)
            .field("account_key", &masked(&self.account_key))
            .field("sas_token", &masked(&self.sas_token))
            .field("connection_string", &masked(&self.connection_string))
            .field("endpoint", &self.endpoint)
            .field("block_size_kib", &self.block_size_kib)
            .finish_non_exhaustive()
    }
}

pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::text("account", "Storage account")
        .help("Account name. Not needed with a connection string.")
        .doc("https://learn.microsoft.com/en-us/azure/storage/common/storage-account-overview"),
    ConfigField::text("container", "Container").required().help("Name of an existing container."),
    ConfigField::secret("account_key", "Account key")
        .help("Base64 access key of the account (Shared Key). Also signs the URLs of presign_read.")
        .doc("https://learn.microsoft.com/en-us/azure/storage/common/storage-account-keys-manage"),
    ConfigField::secret("sas_token", "SAS token")
        .help("A SAS token with read, write, delete and list permissions, instead of the account key.")
        .doc("https://learn.microsoft.com/en-us/azure/storage/common/storage-sas-overview"),
    ConfigField::secret("connection_string", "Connection string")
        .help("The account's connection string (holds the key or a SAS); replaces account, key and endpoint.")
        .doc("https://learn.microsoft.com/en-us/azure/storage/common/storage-configure-connection-string"),
    ConfigField::url("endpoint", "Blob endpoint")
        .help("Default https://ACCOUNT.blob.core.windows.net. Azurite: http://127.0.0.1:10000/devstoreaccount1"),
    ConfigField::number("block_size_kib", "Block size (KiB)")
        .default("8192")
        .help("Bodies larger than this are uploaded as staged blocks of this size. Memory per upload is about twice this.")
        .doc("https://learn.microsoft.com/en-us/rest/api/storageservices/put-block"),
    ConfigField::number("connect_timeout_secs", "Connect timeout (s)").default("10"),
    ConfigField::number("request_timeout_secs", "Request timeout (s)")
        .default("120")
        .help("Limit for each metadata request and each block upload."),
    ConfigField::number("read_timeout_secs", "Read timeout (s)")
        .default("60")
        .help("Longest wait for the next bytes while downloading."),
    ConfigField::number("block_attempts", "Block attempts")
        .default("4")
        .help("How often one block upload is tried before the write fails."),
];

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
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub read_timeout: Duration,
    pub block_attempts: u32,
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
        let block_kib = self.block_size_kib.unwrap_or(DEFAULT_BLOCK_KIB);
        if block_kib == 0 || block_kib > MAX_BLOCK_KIB {
            return Err(invalid("block_size_kib", &format!("must be between 1 and {MAX_BLOCK_KIB}")));
        }
        let secs = |v: Option<u64>, default: u64, field: &str| -> Result<Duration> {
            match v.unwrap_or(default) {
                0 => Err(invalid(field, "must be at least 1 second")),
                s => Ok(Duration::from_secs(s)),
            }
        };
        Ok(Settings {
            account,
            container,
            endpoint,
            credentials,
            block_size: block_kib * 1024,
            connect_timeout: secs(self.connect_timeout_secs, 10, "connect_timeout_secs")?,
            request_timeout: secs(self.request_timeout_secs, 120, "request_timeout_secs")?,
            read_timeout: secs(self.read_timeout_secs, 60, "read_timeout_secs")?,
            block_attempts: self.block_attempts.unwrap_or(4).max(1),
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
