//! Shared Key request signing and service SAS URLs, written from
//! Microsoft's public docs:
//! - "Authorize with Shared Key" (string-to-sign for the Blob service,
//!   version 2015-02-21 and later; canonicalized headers and resource);
//! - "Create a service SAS" (string-to-sign for version 2020-12-06 and later).

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::Request;
use reqwest::header::HeaderValue;
use sha2::Sha256;

use csal_core::{Result, StorageError};

use crate::config::SecretBytes;

/// The REST API version we speak.
pub(crate) const API_VERSION: &str = "2023-11-03";

fn hmac_b64(key: &SecretBytes, text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes keys of any length");
    mac.update(text.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The Shared Key string-to-sign of a request (its headers must be final).
pub(crate) fn string_to_sign(request: &Request, account: &str) -> String {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let content_length = match header("content-length").as_str() {
        "0" => String::new(),
        other => other.to_owned(),
    };
    let mut out = String::with_capacity(256);
    for part in [
        request.method().as_str().to_owned(),
        header("content-encoding"),
        header("content-language"),
        content_length,
        header("content-md5"),
        header("content-type"),
        header("date"),
        header("if-modified-since"),
        header("if-match"),
        header("if-none-match"),
        header("if-unmodified-since"),
        header("range"),
    ] {
        out.push_str(&part);
        out.push('\n');
    }
    // Canonicalized headers: x-ms-*, lowercase, sorted, "name:value\n".
    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-ms-"))
        .map(|(name, value)| {
            // Trimmed only, as Microsoft's SDKs and Azurite do.
            (name.as_str().to_owned(), value.to_str().unwrap_or("").trim().to_owned())
        })
        .collect();
    ms.sort();
    for (name, value) in ms {
        out.push_str(&name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    // Canonicalized resource: /account + the encoded path as sent, then each
    // query parameter (lowercase name, decoded values) on its own line.
    out.push('/');
    out.push_str(account);
    out.push_str(request.url().path());
    let mut params: Vec<(String, String)> =
        request.url().query_pairs().map(|(k, v)| (k.to_lowercase(), v.into_owned())).collect();
    params.sort();
    let mut i = 0;
    while i < params.len() {
        let name = params[i].0.clone();
        let mut values = Vec::new();
        while i < params.len() && params[i].0 == name {
            values.push(params[i].1.clone());
            i += 1;
        }
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

/// Add `x-ms-date`, `x-ms-version` and the Shared Key `Authorization` header.
pub(crate) fn sign_shared_key(request: &mut Request, account: &str, key: &SecretBytes) -> Result<()> {
    let date = httpdate::fmt_http_date(SystemTime::now());
    let headers = request.headers_mut();
    headers.insert("x-ms-date", HeaderValue::from_str(&date).expect("HTTP dates are ASCII"));
    headers.insert("x-ms-version", HeaderValue::from_static(API_VERSION));
    let signature = hmac_b64(key, &string_to_sign(request, account));
    let mut value = HeaderValue::from_str(&format!("SharedKey {account}:{signature}"))
        .map_err(|_| StorageError::invalid_config("field 'account': not usable in a header"))?;
    value.set_sensitive(true);
    request.headers_mut().insert(reqwest::header::AUTHORIZATION, value);
    Ok(())
}

/// Add `x-ms-date`, `x-ms-version` (bearer tokens need 2017-11-09 or
/// later) and the `Authorization: Bearer` header of an Entra ID token.
pub(crate) fn apply_bearer(request: &mut Request, token: &str) -> Result<()> {
    let date = httpdate::fmt_http_date(SystemTime::now());
    let headers = request.headers_mut();
    headers.insert("x-ms-date", HeaderValue::from_str(&date).expect("HTTP dates are ASCII"));
    headers.insert("x-ms-version", HeaderValue::from_static(API_VERSION));
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| StorageError::auth("the token endpoint issued a token that is not usable in a header"))?;
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    Ok(())
}

/// Append a SAS token's parameters to a request URL.
pub(crate) fn apply_sas(request: &mut Request, token: &str) {
    request.headers_mut().insert("x-ms-version", HeaderValue::from_static(API_VERSION));
    let url = request.url_mut();
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&{token}"),
        _ => token.to_owned(),
    };
    url.set_query(Some(&query));
}

/// A read-only service SAS for one blob (signed with the account key).
pub(crate) struct BlobSas<'a> {
    pub account: &'a str,
    pub container: &'a str,
    /// Blob name, not encoded.
    pub blob: &'a str,
    pub now: SystemTime,
    pub expires_in: Duration,
}

impl BlobSas<'_> {
    /// The SAS query string (`sv=...&sig=...`).
    pub(crate) fn query(&self, key: &SecretBytes) -> String {
        // Start a little in the past: clocks differ.
        let start = humantime::format_rfc3339_seconds(self.now - Duration::from_secs(300)).to_string();
        let expiry = humantime::format_rfc3339_seconds(self.now + self.expires_in).to_string();
        let resource = format!("/blob/{}/{}/{}", self.account, self.container, self.blob);
        let fields = [
            "r",          // signedPermissions
            &start,       // signedStart
            &expiry,      // signedExpiry
            &resource,    // canonicalizedResource
            "",           // signedIdentifier
            "",           // signedIP
            "https,http", // signedProtocol
            API_VERSION,  // signedVersion
            "b",          // signedResource
            "",           // signedSnapshotTime
            "",           // signedEncryptionScope
            "",
            "",
            "",
            "",
            "", // rscc, rscd, rsce, rscl, rsct
        ];
        let signature = hmac_b64(key, &fields.join("\n"));
        const UNRESERVED: &percent_encoding::AsciiSet =
            &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string();
        format!(
            "sv={API_VERSION}&spr=https%2Chttp&st={}&se={}&sr=b&sp=r&sig={}",
            enc(&start),
            enc(&expiry),
            enc(&signature)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_to_sign_follows_the_shared_key_rules() {
        let client = reqwest::Client::new();
        let request = client
            .put("http://127.0.0.1:10000/devstoreaccount1/c/a%20b?comp=block&blockid=QUFB")
            .header("content-length", "0")
            .header("If-None-Match", "*")
            .header("x-ms-meta-Camera", "cam  5")
            .header("x-ms-date", "Sun, 29 Nov 2026 10:00:00 GMT")
            .build()
            .unwrap();
        let s = string_to_sign(&request, "devstoreaccount1");
        assert_eq!(
            s,
            "PUT\n\n\n\n\n\n\n\n\n*\n\n\nx-ms-date:Sun, 29 Nov 2026 10:00:00 GMT\nx-ms-meta-camera:cam  5\n/devstoreaccount1/devstoreaccount1/c/a%20b\nblockid:QUFB\ncomp:block"
        );
    }

    #[test]
    fn signatures_depend_on_the_key() {
        let a = hmac_b64(&SecretBytes(b"k1".to_vec()), "x");
        let b = hmac_b64(&SecretBytes(b"k2".to_vec()), "x");
        assert_ne!(a, b);
        assert_eq!(a.len(), 44);
    }

    #[test]
    fn sas_query_has_the_signed_fields() {
        let sas = BlobSas {
            account: "acct",
            container: "c",
            blob: "a/b.mp4",
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            expires_in: Duration::from_secs(600),
        };
        let q = sas.query(&SecretBytes(b"key".to_vec()));
        assert!(
            q.starts_with(
                "sv=2023-11-03&spr=https%2Chttp&st=2023-11-14T22%3A08%3A20Z&se=2023-11-14T22%3A23%3A20Z&sr=b&sp=r&sig="
            ),
            "{q}"
        );
    }
}
