//! S3-compatible services as presets, in one table (rclone's idea): each is
//! a provider_type of its own whose config asks only what that service
//! needs, and fills endpoint, signing region and quirks from its public docs.
//!
//! Every preset builds an [`S3Config`] and then an ordinary [`S3Module`].
//! Only conformance against a local emulator (moto) was run for them; none
//! was verified against the real service (see docs/providers/<preset>.md).
//!
//! `endpoint` is an advanced override on every preset: empty, the endpoint
//! comes from the table; set, it replaces it (a proxy, or a local emulator
//! in tests) and path-style addressing is used.

use std::sync::Arc;

use csal_core::spec::spec_field;
use csal_core::{
    ConfigField, ConfigSpec, InstanceContext, ProviderCategory, ProviderRegistration, Result, SecretString,
    StorageError, StorageModule,
};

use crate::config::{ChecksumAlgorithm, ConditionalCreate, S3Config};
use crate::module::S3Module;

/// The config every preset parses (each preset's field spec admits a subset;
/// the router refuses fields outside it before this is parsed). Defaults are
/// the preset's (its `region` field) or `S3Config`'s.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetConfig {
    /// Bucket name.
    pub bucket: String,
    /// Region, for presets whose endpoint depends on it.
    pub region: Option<String>,
    /// Account id (R2's endpoint host).
    pub account_id: Option<String>,
    /// Object Storage namespace (Oracle's endpoint host).
    pub namespace: Option<String>,
    /// Endpoint override (proxies, emulators); normally empty.
    pub endpoint: Option<String>,
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: SecretString,
    /// Folder inside the bucket.
    pub prefix: Option<String>,
    /// Part size (MiB); `S3Config`'s default when absent.
    pub part_size_mb: Option<u64>,
    /// Parts in flight per upload.
    pub upload_concurrency: Option<usize>,
    /// Path-style addressing; the preset's when absent.
    pub force_path_style: Option<bool>,
    /// Upload checksum; the preset's when absent.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// Conditional create mode; the preset's when absent.
    pub conditional_create: Option<ConditionalCreate>,
    /// Extra trusted CA certificates (PEM), for an endpoint behind a private CA.
    pub ca_file: Option<String>,
}

/// One row of the table.
pub struct Preset {
    /// Its registered `provider_type` (`r2`).
    pub provider_type: &'static str,
    /// Name shown in the admin UI.
    pub display_name: &'static str,
    /// One line on the service.
    pub description: &'static str,
    /// The fields it asks (a subset of `s3`'s, plus its own).
    pub fields: &'static [ConfigField],
    /// The service endpoint from the preset's fields and the region (the
    /// `region` field, or its default).
    pub endpoint: fn(&PresetConfig, Option<&str>) -> Result<String>,
    /// Region used to sign requests: `None` = the `region` field.
    pub signing_region: Option<&'static str>,
    /// Whether the service needs path-style addressing.
    pub path_style: bool,
    /// The upload checksum the service accepts.
    pub checksum: ChecksumAlgorithm,
    /// Whether the service honours `If-None-Match: *` on PUT.
    pub conditional_create: ConditionalCreate,
    /// Largest part count the service allows (S3: 10,000).
    pub max_parts_note: Option<&'static str>,
}

impl Preset {
    /// The `S3Config` this preset makes of `config`.
    pub fn to_s3_config(&self, config: PresetConfig) -> Result<S3Config> {
        let override_endpoint = config.endpoint.clone().filter(|e| !e.is_empty());
        let given = config.region.clone().filter(|r| !r.is_empty()).or_else(|| self.default_region());
        let endpoint = match &override_endpoint {
            Some(e) => e.clone(),
            None => (self.endpoint)(&config, given.as_deref())?,
        };
        let region = match (self.signing_region, given) {
            (Some(fixed), _) => fixed.to_owned(),
            (None, Some(r)) => r,
            (None, None) => return Err(missing("region")),
        };
        let mut s3 = S3Config::new(config.bucket);
        s3.region = region;
        s3.endpoint = Some(endpoint);
        s3.access_key = Some(config.access_key);
        s3.secret_key = Some(config.secret_key);
        s3.prefix = config.prefix;
        s3.ca_file = config.ca_file;
        s3.force_path_style = override_endpoint.is_some() || config.force_path_style.unwrap_or(self.path_style);
        s3.checksum_algorithm = config.checksum_algorithm.unwrap_or(self.checksum);
        s3.conditional_create = config.conditional_create.unwrap_or(self.conditional_create);
        if let Some(p) = config.part_size_mb {
            s3.part_size_mb = p;
        }
        if let Some(c) = config.upload_concurrency {
            s3.upload_concurrency = c;
        }
        Ok(s3)
    }

    /// The default of the preset's `region` field, if it has one.
    fn default_region(&self) -> Option<String> {
        let field = self.fields.iter().find(|f| f.key == "region")?;
        serde_json::from_str(field.default?).ok()
    }

    fn build(&self, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
        let parsed: PresetConfig = csal_core::parse_config(self.provider_type, config)?;
        let s3 = self.to_s3_config(parsed).map_err(|e| e.with_provider(self.provider_type))?;
        Ok(Arc::new(S3Module::new(s3).map_err(|e| e.with_provider(self.provider_type))?))
    }
}

fn missing(field: &str) -> StorageError {
    StorageError::invalid_config(format!("missing required field '{field}'"))
}

/// A DNS label we can put into a host name (region, account id, namespace).
fn label<'a>(value: Option<&'a str>, field: &str) -> Result<&'a str> {
    let v = value.filter(|v| !v.is_empty()).ok_or_else(|| missing(field))?;
    let ok = v.len() <= 63
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if !ok {
        return Err(StorageError::invalid_config(format!(
            "field '{field}': must be letters, digits and '-' (it becomes part of a host name)"
        )));
    }
    Ok(v)
}

// ---- fields shared by presets: the `s3` spec's, keys required ----
const fn s3_field(key: &str) -> ConfigField {
    spec_field(S3Config::FIELDS, key)
}
const BUCKET: ConfigField = s3_field("bucket");
const ACCESS_KEY: ConfigField = s3_field("access_key").required();
const SECRET_KEY: ConfigField = s3_field("secret_key").required();
const PREFIX: ConfigField = s3_field("prefix");
const PART_SIZE: ConfigField = s3_field("part_size_mb");
const CONCURRENCY: ConfigField = s3_field("upload_concurrency");
const CA_FILE: ConfigField = s3_field("ca_file");
const ENDPOINT_OVERRIDE: ConfigField = ConfigField::url("endpoint", "Endpoint override (advanced)")
    .credential_target()
    .help(
        "Leave empty: the endpoint follows from the fields above. Set only to go through a proxy or to test against a local S3 emulator; path-style addressing is then used.",
    );

macro_rules! preset_fields {
    ($($extra:expr),* $(,)?) => {
        &[BUCKET, $($extra,)* ACCESS_KEY, SECRET_KEY, PREFIX, PART_SIZE, CONCURRENCY, ENDPOINT_OVERRIDE, CA_FILE]
    };
}

/// `s3_compatible`'s defaults (its row and its field spec share them).
const COMPAT_PATH_STYLE: bool = true;
const COMPAT_CHECKSUM: ChecksumAlgorithm = ChecksumAlgorithm::Md5;

/// The table.
pub const PRESETS: &[Preset] = &[
    Preset {
        provider_type: "r2",
        display_name: "Cloudflare R2",
        description: "Cloudflare R2 through its S3 API (account id + API token keys).",
        fields: preset_fields!(
            ConfigField::text("account_id", "Account ID")
                .required()
                .credential_target()
                .help("Your Cloudflare account id (dashboard > R2 > Overview).")
                .doc("https://developers.cloudflare.com/r2/api/s3/api/")
        ),
        endpoint: |c, _| {
            Ok(format!("https://{}.r2.cloudflarestorage.com", label(c.account_id.as_deref(), "account_id")?))
        },
        signing_region: Some("auto"),
        path_style: true,
        checksum: ChecksumAlgorithm::Md5,
        conditional_create: ConditionalCreate::Auto,
        max_parts_note: Some("all parts but the last must have the same size (CSAL always does this)"),
    },
    Preset {
        provider_type: "b2",
        display_name: "Backblaze B2 (S3 API)",
        description: "Backblaze B2 through its S3-compatible API (application key id + key).",
        fields: preset_fields!(
            ConfigField::text("region", "Region")
                .required()
                .help("The region in your bucket's S3 endpoint, e.g. us-west-004.")
                .doc("https://www.backblaze.com/docs/cloud-storage-s3-compatible-api")
        ),
        endpoint: |_, region| Ok(format!("https://s3.{}.backblazeb2.com", label(region, "region")?)),
        signing_region: None,
        path_style: false,
        checksum: ChecksumAlgorithm::Md5,
        conditional_create: ConditionalCreate::Auto,
        max_parts_note: None,
    },
    Preset {
        provider_type: "wasabi",
        display_name: "Wasabi",
        description: "Wasabi hot cloud storage (S3 API).",
        fields: preset_fields!(
            ConfigField::text("region", "Region")
                .default("\"us-east-1\"")
                .help("Bucket region, e.g. us-east-1, eu-central-1, ap-northeast-1.")
                .doc("https://docs.wasabi.com/docs/what-are-the-service-urls-for-wasabi-s-different-storage-regions")
        ),
        endpoint: |_, region| Ok(format!("https://s3.{}.wasabisys.com", label(region, "region")?)),
        signing_region: None,
        path_style: false,
        checksum: ChecksumAlgorithm::Md5,
        conditional_create: ConditionalCreate::Auto,
        max_parts_note: None,
    },
    Preset {
        provider_type: "do_spaces",
        display_name: "DigitalOcean Spaces",
        description: "DigitalOcean Spaces object storage (S3 API).",
        fields: preset_fields!(
            ConfigField::text("region", "Region")
                .required()
                .help("Datacenter of the Space, e.g. nyc3, ams3, sgp1, fra1, sfo3.")
                .doc("https://docs.digitalocean.com/products/spaces/reference/s3-compatibility/")
        ),
        endpoint: |_, region| Ok(format!("https://{}.digitaloceanspaces.com", label(region, "region")?)),
        // Spaces' docs configure SDKs with region us-east-1; the endpoint picks the datacenter.
        signing_region: Some("us-east-1"),
        path_style: false,
        checksum: ChecksumAlgorithm::Md5,
        conditional_create: ConditionalCreate::Auto,
        max_parts_note: None,
    },
    Preset {
        provider_type: "linode",
        display_name: "Akamai (Linode) Object Storage",
        description: "Linode / Akamai Object Storage (S3 API).",
        fields: preset_fields!(
            ConfigField::text("region", "Cluster / region")
                .required()
                .help("The cluster id in the bucket URL, e.g. us-east-1, eu-central-1, us-sea-1.")
                .doc("https://techdocs.akamai.com/cloud-computing/docs/object-storage")
        ),
        endpoint: |_, region| Ok(format!("https://{}.linodeobjects.com", label(region, "region")?)),
        signing_region: None,
        path_style: false,
        checksum: ChecksumAlgorithm::Md5,
        conditional_create: ConditionalCreate::Auto,
        max_parts_note: None,
    },
    Preset {
        provider_type: "ibm_cos",
        display_name: "IBM Cloud Object Storage",
        description: "IBM Cloud Object Storage with HMAC credentials (S3 API).",
        fields: preset_fields!(
            ConfigField::text("region", "Region")
                .required()
                .help("Regional endpoint location, e.g. us-south, eu-de, jp-tok.")
                .doc("https://cloud.ibm.com/docs/cloud-object-storage?topic=cloud-object-storage-endpoints")
        ),
        endpoint: |_, region| {
            Ok(format!("https://s3.{}.cloud-object-storage.appdomain.cloud", label(region, "region")?))
        },
        // IBM COS accepts SigV4 signed for us-east-1 on every regional endpoint (as rclone does).
        signing_region: Some("us-east-1"),
        path_style: false,
        checksum: ChecksumAlgorithm::Md5,
        conditional_create: ConditionalCreate::Auto,
        max_parts_note: None,
    },
    Preset {
        provider_type: "oracle",
        display_name: "Oracle Cloud Object Storage (S3 compatibility API)",
        description: "Oracle Cloud Infrastructure Object Storage through its Amazon S3 Compatibility API (customer secret keys).",
        fields: preset_fields!(
            ConfigField::text("namespace", "Object Storage namespace")
                .required()
                .credential_target()
                .help("Your tenancy's Object Storage namespace (Tenancy details).")
                .doc("https://docs.oracle.com/iaas/Content/Object/Tasks/s3compatibleapi.htm"),
            ConfigField::text("region", "Region")
                .required()
                .help("Region identifier, e.g. us-ashburn-1, eu-frankfurt-1."),
        ),
        endpoint: |c, region| {
            Ok(format!(
                "https://{}.compat.objectstorage.{}.oraclecloud.com",
                label(c.namespace.as_deref(), "namespace")?,
                label(region, "region")?
            ))
        },
        signing_region: None,
        // The compatibility API supports path-style addressing only.
        path_style: true,
        checksum: ChecksumAlgorithm::Md5,
        conditional_create: ConditionalCreate::Auto,
        max_parts_note: None,
    },
    Preset {
        provider_type: "ovh",
        display_name: "OVHcloud Object Storage",
        description: "OVHcloud Object Storage (S3 API).",
        fields: preset_fields!(
            ConfigField::text("region", "Region")
                .required()
                .help("Region code in lower case, e.g. gra, sbg, rbx, de, uk, waw, bhs.")
                .doc("https://help.ovhcloud.com/csm/en-public-cloud-storage-s3-location")
        ),
        endpoint: |_, region| Ok(format!("https://s3.{}.io.cloud.ovh.net", label(region, "region")?)),
        signing_region: None,
        path_style: false,
        checksum: ChecksumAlgorithm::Md5,
        conditional_create: ConditionalCreate::Auto,
        max_parts_note: None,
    },
    Preset {
        provider_type: "scaleway",
        display_name: "Scaleway Object Storage",
        description: "Scaleway Object Storage (S3 API).",
        fields: preset_fields!(
            ConfigField::text("region", "Region")
                .required()
                .help("fr-par, nl-ams or pl-waw.")
                .doc("https://www.scaleway.com/en/docs/object-storage/api-cli/using-api-call-list/")
        ),
        endpoint: |_, region| Ok(format!("https://s3.{}.scw.cloud", label(region, "region")?)),
        signing_region: None,
        path_style: false,
        checksum: ChecksumAlgorithm::Md5,
        conditional_create: ConditionalCreate::Auto,
        max_parts_note: Some("at most 1,000 parts per upload: objects up to 1000 x part size"),
    },
    Preset {
        provider_type: "s3_compatible",
        display_name: "S3-compatible (MinIO, Ceph, Garage, ...)",
        description: "Any server speaking the S3 API at an endpoint you give.",
        fields: &[
            BUCKET,
            ConfigField::url("endpoint", "Endpoint URL")
                .required()
                .credential_target()
                .help("https://host[:port] of the S3 API."),
            ConfigField::text("region", "Region")
                .default("\"us-east-1\"")
                .help("Signing region; most servers accept us-east-1."),
            ACCESS_KEY,
            SECRET_KEY,
            s3_field("force_path_style").default(if COMPAT_PATH_STYLE { "true" } else { "false" }),
            PREFIX,
            PART_SIZE,
            CONCURRENCY,
            s3_field("checksum_algorithm").default(COMPAT_CHECKSUM.json()),
            s3_field("conditional_create"),
            CA_FILE,
        ],
        endpoint: |c, _| c.endpoint.clone().filter(|e| !e.is_empty()).ok_or_else(|| missing("endpoint")),
        signing_region: None,
        path_style: COMPAT_PATH_STYLE,
        checksum: COMPAT_CHECKSUM,
        conditional_create: ConditionalCreate::Auto,
        max_parts_note: None,
    },
];

/// The table row of `provider_type`.
pub fn preset(provider_type: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.provider_type == provider_type)
}

macro_rules! register_presets {
    ($($index:literal => $factory:ident),+ $(,)?) => {
        $(
            fn $factory(_ctx: &InstanceContext, config: &serde_json::Value) -> Result<Arc<dyn StorageModule>> {
                PRESETS[$index].build(config)
            }
            csal_core::register_provider!(ProviderRegistration {
                provider_type: PRESETS[$index].provider_type,
                display_name: PRESETS[$index].display_name,
                category: ProviderCategory::ObjectStorage,
                crate_name: env!("CARGO_PKG_NAME"),
                description: PRESETS[$index].description,
                fields: PRESETS[$index].fields,
                factory: $factory,
            });
        )+
    };
}

register_presets!(
    0 => build_r2,
    1 => build_b2,
    2 => build_wasabi,
    3 => build_do_spaces,
    4 => build_linode,
    5 => build_ibm_cos,
    6 => build_oracle,
    7 => build_ovh,
    8 => build_scaleway,
    9 => build_s3_compatible,
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_of(provider_type: &str, cfg: serde_json::Value) -> Result<S3Config> {
        let p = preset(provider_type).unwrap();
        csal_core::spec::check_config(provider_type, p.fields, &cfg)?;
        p.to_s3_config(csal_core::parse_config(provider_type, &cfg)?)
    }

    fn keys() -> serde_json::Value {
        json!({"bucket": "cams", "access_key": "AK", "secret_key": "SK"})
    }

    fn with(extra: serde_json::Value) -> serde_json::Value {
        let mut v = keys();
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    }

    #[test]
    fn endpoints_follow_the_table() {
        let cases = [
            ("r2", json!({"account_id": "abc123"}), "https://abc123.r2.cloudflarestorage.com", "auto"),
            ("b2", json!({"region": "us-west-004"}), "https://s3.us-west-004.backblazeb2.com", "us-west-004"),
            ("wasabi", json!({}), "https://s3.us-east-1.wasabisys.com", "us-east-1"),
            ("do_spaces", json!({"region": "ams3"}), "https://ams3.digitaloceanspaces.com", "us-east-1"),
            ("linode", json!({"region": "eu-central-1"}), "https://eu-central-1.linodeobjects.com", "eu-central-1"),
            (
                "ibm_cos",
                json!({"region": "eu-de"}),
                "https://s3.eu-de.cloud-object-storage.appdomain.cloud",
                "us-east-1",
            ),
            (
                "oracle",
                json!({"namespace": "axyz", "region": "us-ashburn-1"}),
                "https://axyz.compat.objectstorage.us-ashburn-1.oraclecloud.com",
                "us-ashburn-1",
            ),
            ("ovh", json!({"region": "gra"}), "https://s3.gra.io.cloud.ovh.net", "gra"),
            ("scaleway", json!({"region": "fr-par"}), "https://s3.fr-par.scw.cloud", "fr-par"),
            ("s3_compatible", json!({"endpoint": "http://127.0.0.1:9000"}), "http://127.0.0.1:9000", "us-east-1"),
        ];
        for (ty, extra, endpoint, region) in cases {
            let c = s3_of(ty, with(extra)).unwrap_or_else(|e| panic!("{ty}: {e}"));
            assert_eq!(c.endpoint.as_deref(), Some(endpoint), "{ty}");
            assert_eq!(c.region, region, "{ty}");
            c.validate().unwrap();
        }
        assert!(s3_of("oracle", with(json!({"namespace": "n", "region": "r"}))).unwrap().force_path_style);
    }

    #[test]
    fn presets_ask_only_what_they_need() {
        let e = s3_of("r2", with(json!({"account_id": "a", "region": "x"}))).unwrap_err();
        assert!(e.message().contains("'region'"), "{e}");
        let e = s3_of("r2", keys()).unwrap_err();
        assert!(e.message().contains("'account_id'"), "{e}");
        let e = s3_of("b2", with(json!({"region": "us-west-004/evil"}))).unwrap_err();
        assert!(e.message().contains("'region'"), "{e}");
    }

    #[test]
    fn endpoint_override_uses_path_style() {
        let c = s3_of("b2", with(json!({"region": "us-west-004", "endpoint": "http://127.0.0.1:5000"}))).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(c.force_path_style);
    }

    #[test]
    fn a_preset_passes_its_ca_file_on() {
        let c =
            s3_of("s3_compatible", with(json!({"endpoint": "https://minio.lab:9000", "ca_file": "/etc/lab-ca.pem"})))
                .unwrap();
        assert_eq!(c.ca_file.as_deref(), Some("/etc/lab-ca.pem"));
        assert!(preset("r2").unwrap().fields.iter().any(|f| f.key == "ca_file"));
    }

    #[test]
    fn preset_specs_agree_with_the_preset_config() {
        for p in PRESETS {
            csal_core::spec::assert_spec_within::<PresetConfig>(p.provider_type, p.fields);
        }
    }

    #[test]
    fn every_preset_is_registered_once() {
        for p in PRESETS {
            assert_eq!(csal_core::find_provider(p.provider_type).unwrap().crate_name, "csal-s3");
        }
        assert!(csal_core::find_provider("s3").is_ok());
    }
}
