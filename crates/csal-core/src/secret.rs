//! Secrets: a type whose `Debug`/`Display` never show the value, and helpers
//! that mask the secret fields of an instance's config JSON for display.
//!
//! Provider configs hold keys, tokens and passwords as [`SecretString`]
//! (from the `secrecy` crate): reading the value needs an explicit
//! `expose_secret()`, so it cannot slip into a log line by accident.

pub use secrecy::{ExposeSecret, SecretString};

use crate::spec::{ConfigField, is_blank};

/// What every masked secret is shown as (defined beside the error
/// scrubbing that uses it too).
pub use crate::error::MASK;

/// A copy of `config` with every non-empty secret field replaced by [`MASK`].
/// Fields not in the spec are kept (validation refuses them elsewhere).
pub fn mask_config(fields: &[ConfigField], config: &serde_json::Value) -> serde_json::Value {
    let mut masked = config.clone();
    if let Some(map) = masked.as_object_mut() {
        for field in fields.iter().filter(|f| f.kind.is_secret()) {
            if let Some(v) = map.get_mut(field.key)
                && !is_blank(v)
            {
                *v = serde_json::Value::String(MASK.to_owned());
            }
        }
    }
    masked
}

/// The secret values present in `config`, for scrubbing error messages.
pub fn secret_values(fields: &[ConfigField], config: &serde_json::Value) -> Vec<String> {
    let Some(map) = config.as_object() else { return Vec::new() };
    fields
        .iter()
        .filter(|f| f.kind.is_secret())
        .filter_map(|f| map.get(f.key))
        .filter_map(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .flat_map(|s| {
            // Multi-line secrets (private keys) are also scrubbed line by line.
            let mut all = vec![s.to_owned()];
            if s.contains('\n') {
                all.extend(s.lines().map(str::trim).filter(|l| l.len() >= 8).map(str::to_owned));
            }
            all
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ConfigField;

    const FIELDS: &[ConfigField] = &[
        ConfigField::text("bucket", "Bucket"),
        ConfigField::secret("secret_key", "Secret key"),
        ConfigField::secret_multiline("private_key", "Private key"),
    ];

    #[test]
    fn masks_only_secret_fields() {
        let cfg = serde_json::json!({"bucket": "b", "secret_key": "s3cr3t!", "private_key": ""});
        let masked = mask_config(FIELDS, &cfg);
        assert_eq!(masked["bucket"], "b");
        assert_eq!(masked["secret_key"], MASK);
        assert_eq!(masked["private_key"], "");
        assert!(!masked.to_string().contains("s3cr3t!"));
        assert_eq!(secret_values(FIELDS, &cfg), vec!["s3cr3t!".to_owned()]);
    }

    #[test]
    fn secret_string_debug_is_masked() {
        let s = SecretString::from("hunter22");
        assert!(!format!("{s:?}").contains("hunter22"));
    }
}
