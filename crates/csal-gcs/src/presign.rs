//! V4 signed URLs (`GOOG4-RSA-SHA256`), signed with the service account's
//! RSA key, following "Signature version 4 signing process" in the GCS docs
//! (https://cloud.google.com/storage/docs/authentication/signatures).

use std::time::{Duration, SystemTime};

use percent_encoding::utf8_percent_encode;
use sha2::{Digest, Sha256};

use csal_core::{Result, StorageError};

use crate::auth::UrlSigner;
use crate::client::SEGMENT;

/// GCS refuses signed URLs valid for longer than seven days.
pub(crate) const MAX_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Everything a V4 URL is made of, before signing.
pub(crate) struct V4Request<'a> {
    /// `https://storage.googleapis.com` or an emulator's root.
    pub endpoint: &'a str,
    pub bucket: &'a str,
    pub object: &'a str,
    pub client_email: &'a str,
    pub now: SystemTime,
    pub expires_in: Duration,
}

impl V4Request<'_> {
    /// `(url without signature, string to sign)`.
    pub(crate) fn canonical(&self) -> Result<(String, String)> {
        if self.expires_in.is_zero() || self.expires_in > MAX_EXPIRY {
            return Err(StorageError::invalid_input("a signed URL must expire within 1 second to 7 days"));
        }
        let endpoint = reqwest::Url::parse(self.endpoint)
            .map_err(|e| StorageError::invalid_config("field 'endpoint': not a URL").with_source(e))?;
        let host = match (endpoint.host_str(), endpoint.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(StorageError::invalid_config("field 'endpoint': no host")),
        };
        let stamp = humantime::format_rfc3339_seconds(self.now).to_string().replace(['-', ':'], "");
        let date = &stamp[..8];
        let scope = format!("{date}/auto/storage/goog4_request");
        let object_path: Vec<String> = self.object.split('/').map(encode).collect();
        let path = format!("/{}/{}", encode(self.bucket), object_path.join("/"));
        let mut query = [
            ("X-Goog-Algorithm", "GOOG4-RSA-SHA256".to_owned()),
            ("X-Goog-Credential", format!("{}/{scope}", self.client_email)),
            ("X-Goog-Date", stamp.clone()),
            ("X-Goog-Expires", self.expires_in.as_secs().max(1).to_string()),
            ("X-Goog-SignedHeaders", "host".to_owned()),
        ];
        query.sort_by(|a, b| a.0.cmp(b.0));
        let canonical_query: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        let canonical_query = canonical_query.join("&");
        let canonical_request = format!("GET\n{path}\n{canonical_query}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD");
        let hashed = hex::encode(Sha256::digest(canonical_request.as_bytes()));
        let string_to_sign = format!("GOOG4-RSA-SHA256\n{stamp}\n{scope}\n{hashed}");
        let base = format!("{}://{host}{path}?{canonical_query}", endpoint.scheme());
        Ok((base, string_to_sign))
    }

    pub(crate) fn sign(&self, signer: &UrlSigner) -> Result<String> {
        let (base, string_to_sign) = self.canonical()?;
        let signature = signer.sign(string_to_sign.as_bytes())?;
        Ok(format!("{base}&X-Goog-Signature={}", hex::encode(signature)))
    }
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KeyJson, KeyKind};
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use csal_core::SecretString;

    fn request(expires: u64) -> V4Request<'static> {
        V4Request {
            endpoint: "https://storage.googleapis.com",
            bucket: "cam-archive",
            object: "cam 5/seg@1.mp4",
            client_email: "sa@proj.iam.gserviceaccount.com",
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            expires_in: Duration::from_secs(expires),
        }
    }

    #[test]
    fn canonical_form_follows_the_v4_rules() {
        let (url, to_sign) = request(900).canonical().unwrap();
        assert!(url.starts_with("https://storage.googleapis.com/cam-archive/cam%205/seg%401.mp4?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40proj.iam.gserviceaccount.com%2F20231114%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20231114T221320Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host"), "{url}");
        let lines: Vec<&str> = to_sign.lines().collect();
        assert_eq!(lines[0], "GOOG4-RSA-SHA256");
        assert_eq!(lines[1], "20231114T221320Z");
        assert_eq!(lines[2], "20231114/auto/storage/goog4_request");
        assert_eq!(lines[3].len(), 64);
    }

    #[test]
    fn expiry_over_seven_days_is_refused() {
        assert!(request(7 * 24 * 3600 + 1).canonical().is_err());
        assert!(request(0).canonical().is_err());
    }

    #[test]
    fn signature_verifies_with_the_public_key() {
        let json = crate::auth::tests::throwaway_key_json("https://oauth2.googleapis.com/token");
        let key = KeyJson {
            raw: SecretString::from(json),
            kind: KeyKind::ServiceAccount,
            client_email: Some("sa@proj.iam.gserviceaccount.com".into()),
            field: "credentials_json",
        };
        let signer = UrlSigner::from_key(&key).unwrap();
        let url = request(60).sign(&signer).unwrap();
        let sig = hex::decode(url.rsplit_once("X-Goog-Signature=").unwrap().1).unwrap();
        let (_, to_sign) = request(60).canonical().unwrap();
        let public = signer.public_key_der();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public).verify(to_sign.as_bytes(), &sig).unwrap();
    }
}
