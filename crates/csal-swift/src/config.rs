use csal_core::{Result, SecretString, StorageError, Timeouts};

/// Rackspace's identity endpoint (v2.0, API-key credentials).
pub(crate) const RACKSPACE_IDENTITY_URL: &str = "https://identity.api.rackspacecloud.com/v2.0/tokens";
/// OVHcloud's Keystone endpoint.
pub(crate) const OVH_AUTH_URL: &str = "https://auth.cloud.ovh.net/v3";

/// Config of a `swift` instance.
#[csal_core::config(
    provider = "swift",
    name = "OpenStack Swift",
    category = object_storage,
    description = "OpenStack Swift object storage (Keystone v3 or TempAuth v1); large objects as SLOs.",
    timeouts(connect = 10, read = 60),
    tls
)]
#[derive(Clone)]
pub struct SwiftConfig {
    /// Keystone: https://keystone.example.com:5000/v3 ; TempAuth: https://swift.example.com/auth/v1.0
    #[field(label = "Auth URL", url, credential_target)]
    pub auth_url: String,
    /// 1 = TempAuth / v1.0, 3 = Keystone v3. Default: from the URL (…/v1.0 → 1, else 3).
    #[field(label = "Auth version", select = ["1", "3"])]
    pub auth_version: Option<String>,
    /// Keystone user, or TempAuth 'account:user'.
    #[field(label = "Username")]
    pub username: String,
    /// Keystone password, or the TempAuth key.
    #[field(label = "Password / key")]
    pub password: SecretString,
    /// Keystone domain of the user.
    #[field(label = "User domain", default = "Default")]
    pub user_domain_name: String,
    /// Project (tenant) to scope the token to, by name.
    #[field(label = "Project name")]
    pub project_name: Option<String>,
    /// Takes precedence over the project name.
    #[field(label = "Project id")]
    pub project_id: Option<String>,
    /// Keystone domain of the project (with `project_name`).
    #[field(label = "Project domain", default = "Default")]
    pub project_domain_name: String,
    /// Region of the object-store endpoint in the catalog.
    #[field(label = "Region")]
    pub region: Option<String>,
    /// Which endpoint of the catalog: public, internal or admin.
    #[field(label = "Endpoint interface", select = ["public", "internal", "admin"], default = "public")]
    pub interface: String,
    /// Container holding the objects.
    #[field(label = "Container")]
    pub container: String,
    /// Default: <container>_segments.
    #[field(label = "Segment container")]
    pub segment_container: Option<String>,
    /// Objects larger than this are uploaded as Static Large Objects in segments of this size; memory use is about one segment.
    #[field(label = "Segment size (MiB)", default = 16)]
    pub segment_size_mb: u64,
    /// Create the container on first use when it is missing.
    #[field(label = "Create containers", default = true)]
    pub create_container: bool,
    /// Segments of uploads that never got their manifest (a writer that died) older than this are stale: `csal fsck` reports them and, with --repair (and the scheduled reconciliation), deletes them. 0: every upload without a manifest (also live ones; for tests).
    #[field(label = "Stale upload age (hours)", default = 24)]
    pub stale_upload_hours: u64,
    /// The account's X-Account-Meta-Temp-URL-Key; enables presigned read URLs.
    #[field(
        label = "Temp URL key",
        doc_url = "https://docs.openstack.org/swift/latest/api/temporary_url_middleware.html"
    )]
    pub temp_url_key: Option<SecretString>,
    /// Only for self-signed test servers: disables certificate checks.
    #[field(label = "Accept invalid TLS certificates", credential_target, default = false)]
    pub accept_invalid_certs: bool,
}

/// Config of a `rackspace` instance.
#[csal_core::config(
    provider = "rackspace",
    name = "Rackspace Cloud Files",
    category = object_storage,
    description = "Rackspace Cloud Files (Swift) with a username and API key.",
    timeouts(connect = 10, read = 60),
    tls
)]
#[derive(Clone)]
pub struct RackspaceConfig {
    /// Rackspace account user name.
    #[field(label = "Username")]
    pub username: String,
    /// Account Settings → API Key in the Rackspace control panel.
    #[field(
        label = "API key",
        doc_url = "https://docs.rackspace.com/docs/cloud-files/v1/getting-started/authenticate"
    )]
    pub api_key: SecretString,
    /// Rackspace data center of the container.
    #[field(label = "Region", select = ["DFW", "ORD", "IAD", "LON", "SYD", "HKG"])]
    pub region: String,
    /// Container holding the objects.
    #[field(label = "Container")]
    pub container: String,
    /// Objects larger than this are uploaded as Static Large Objects in segments of this size; memory use is about one segment.
    #[field(label = "Segment size (MiB)", default = 16)]
    pub segment_size_mb: u64,
    /// Account Temp URL key, for presigned reads.
    #[field(label = "Temp URL key")]
    pub temp_url_key: Option<SecretString>,
    /// Use the internal (ServiceNet) endpoint; only from Rackspace servers.
    #[field(label = "Use ServiceNet", default = false)]
    pub internal_network: bool,
}

/// Config of an `ovh_swift` instance.
#[csal_core::config(
    provider = "ovh_swift",
    name = "OVHcloud Object Storage (Swift)",
    category = object_storage,
    description = "OVHcloud Public Cloud Object Storage over the Swift API (Keystone v3 at auth.cloud.ovh.net).",
    timeouts(connect = 10, read = 60),
    tls
)]
#[derive(Clone)]
pub struct OvhSwiftConfig {
    /// The user-… id of your Public Cloud project.
    #[field(label = "OpenStack user")]
    pub username: String,
    /// OVHcloud OpenStack user password.
    #[field(label = "Password")]
    pub password: SecretString,
    /// Public Cloud project (tenant) id.
    #[field(label = "Project id", doc_url = "https://help.ovhcloud.com/csm/en-public-cloud-compute-openstack-users")]
    pub project_id: String,
    /// e.g. GRA, SBG, BHS, DE, UK, WAW.
    #[field(label = "Region")]
    pub region: String,
    /// Container holding the objects.
    #[field(label = "Container")]
    pub container: String,
    /// Objects larger than this are uploaded as Static Large Objects in segments of this size; memory use is about one segment.
    #[field(label = "Segment size (MiB)", default = 16)]
    pub segment_size_mb: u64,
    /// Account Temp URL key, for presigned reads.
    #[field(label = "Temp URL key")]
    pub temp_url_key: Option<SecretString>,
}

/// How to get a token and a storage URL.
#[derive(Clone)]
pub(crate) enum AuthSpec {
    /// TempAuth / Swauth / Rackspace v1.0: GET with X-Auth-User / X-Auth-Key.
    V1 { url: String, user: String, key: SecretString },
    /// Keystone v3 password auth, storage URL from the catalog.
    V3 {
        url: String,
        user: String,
        password: SecretString,
        user_domain: String,
        project: ProjectScope,
        region: Option<String>,
        interface: String,
    },
    /// Rackspace identity v2.0 with `RAX-KSKEY:apiKeyCredentials`.
    RaxV2 { url: String, user: String, api_key: SecretString, region: String, internal: bool },
}

#[derive(Clone)]
pub(crate) enum ProjectScope {
    Id(String),
    Name { name: String, domain: String },
    None,
}

/// Everything the module needs, whichever preset it came from.
#[derive(Clone)]
pub(crate) struct Settings {
    pub provider: &'static str,
    pub auth: AuthSpec,
    pub container: String,
    pub segment_container: String,
    pub segment_size: usize,
    pub create_container: bool,
    /// Segments without a manifest older than this are a dead writer's.
    pub stale_upload_age: std::time::Duration,
    pub temp_url_key: Option<SecretString>,
    pub accept_invalid_certs: bool,
    pub ca_file: Option<csal_core::tls::CaFile>,
    pub timeouts: Timeouts,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No secrets: the auth spec (passwords, keys) and temp URL key are left out.
        f.debug_struct("Settings")
            .field("provider", &self.provider)
            .field("container", &self.container)
            .field("segment_container", &self.segment_container)
            .field("segment_size", &self.segment_size)
            .finish_non_exhaustive()
    }
}

fn check_container(field: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 256 || name.contains('/') || name.chars().any(char::is_control) {
        return Err(StorageError::invalid_config(format!(
            "field '{field}' must be a container name (1-256 characters, no '/')"
        )));
    }
    Ok(())
}

fn segment_size(mb: u64) -> Result<usize> {
    if !(1..=5120).contains(&mb) {
        return Err(StorageError::invalid_config("field 'segment_size_mb' must be between 1 and 5120 (MiB)"));
    }
    Ok((mb as usize) * 1024 * 1024)
}

fn check_url(field: &str, text: &str) -> Result<String> {
    let url = url::Url::parse(text.trim())
        .map_err(|_| StorageError::invalid_config(format!("field '{field}' is not a valid URL")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(StorageError::invalid_config(format!("field '{field}' must be an http:// or https:// URL")));
    }
    Ok(text.trim().trim_end_matches('/').to_owned())
}

impl SwiftConfig {
    pub(crate) fn settings(&self) -> Result<Settings> {
        let url = check_url("auth_url", &self.auth_url)?;
        let version = match self.auth_version.as_deref().map(str::trim) {
            Some("1") | Some("1.0") | Some("v1") => 1,
            Some("3") | Some("v3") => 3,
            Some(_) => return Err(StorageError::invalid_config("field 'auth_version' must be 1 or 3")),
            None if url.ends_with("/v1.0") || url.ends_with("/v1") => 1,
            None => 3,
        };
        let auth = if version == 1 {
            AuthSpec::V1 { url, user: self.username.clone(), key: self.password.clone() }
        } else {
            let project = match (&self.project_id, &self.project_name) {
                (Some(id), _) if !id.is_empty() => ProjectScope::Id(id.clone()),
                (_, Some(name)) if !name.is_empty() => {
                    ProjectScope::Name { name: name.clone(), domain: self.project_domain_name.clone() }
                }
                _ => ProjectScope::None,
            };
            let interface = self.interface.clone();
            if !matches!(interface.as_str(), "public" | "internal" | "admin") {
                return Err(StorageError::invalid_config("field 'interface' must be public, internal or admin"));
            }
            AuthSpec::V3 {
                url,
                user: self.username.clone(),
                password: self.password.clone(),
                user_domain: self.user_domain_name.clone(),
                project,
                region: self.region.clone().filter(|r| !r.is_empty()),
                interface,
            }
        };
        check_container("container", &self.container)?;
        let segment_container =
            self.segment_container.clone().unwrap_or_else(|| format!("{}_segments", self.container));
        check_container("segment_container", &segment_container)?;
        if segment_container == self.container {
            return Err(StorageError::invalid_config("field 'segment_container' must differ from 'container'"));
        }
        Ok(Settings {
            provider: "swift",
            auth,
            container: self.container.clone(),
            segment_container,
            segment_size: segment_size(self.segment_size_mb)?,
            create_container: self.create_container,
            stale_upload_age: std::time::Duration::from_secs(self.stale_upload_hours.saturating_mul(3600)),
            temp_url_key: self.temp_url_key.clone(),
            accept_invalid_certs: self.accept_invalid_certs,
            ca_file: self.trusted_ca()?,
            timeouts: self.timeouts()?,
        })
    }
}

impl RackspaceConfig {
    pub(crate) fn settings(&self) -> Result<Settings> {
        let region = self.region.trim().to_ascii_uppercase();
        if !["DFW", "ORD", "IAD", "LON", "SYD", "HKG"].contains(&region.as_str()) {
            return Err(StorageError::invalid_config("field 'region' must be one of DFW, ORD, IAD, LON, SYD, HKG"));
        }
        check_container("container", &self.container)?;
        Ok(Settings {
            provider: "rackspace",
            auth: AuthSpec::RaxV2 {
                url: RACKSPACE_IDENTITY_URL.into(),
                user: self.username.clone(),
                api_key: self.api_key.clone(),
                region,
                internal: self.internal_network,
            },
            container: self.container.clone(),
            segment_container: format!("{}_segments", self.container),
            segment_size: segment_size(self.segment_size_mb)?,
            create_container: true,
            stale_upload_age: csal_core::STALE_TEMP_AGE,
            temp_url_key: self.temp_url_key.clone(),
            accept_invalid_certs: false,
            ca_file: self.trusted_ca()?,
            timeouts: self.timeouts()?,
        })
    }
}

impl OvhSwiftConfig {
    pub(crate) fn settings(&self) -> Result<Settings> {
        check_container("container", &self.container)?;
        if self.project_id.trim().is_empty() {
            return Err(StorageError::invalid_config("field 'project_id' is required"));
        }
        Ok(Settings {
            provider: "ovh_swift",
            auth: AuthSpec::V3 {
                url: OVH_AUTH_URL.into(),
                user: self.username.clone(),
                password: self.password.clone(),
                user_domain: "Default".into(),
                project: ProjectScope::Id(self.project_id.trim().to_owned()),
                region: Some(self.region.trim().to_ascii_uppercase()),
                interface: "public".into(),
            },
            container: self.container.clone(),
            segment_container: format!("{}_segments", self.container),
            segment_size: segment_size(self.segment_size_mb)?,
            create_container: true,
            stale_upload_age: csal_core::STALE_TEMP_AGE,
            temp_url_key: self.temp_url_key.clone(),
            accept_invalid_certs: false,
            ca_file: self.trusted_ca()?,
            timeouts: self.timeouts()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csal_core::ErrorKind;
    use serde_json::json;

    fn swift(extra: serde_json::Value) -> Result<Settings> {
        let mut c =
            json!({ "auth_url": "https://k.example.com:5000/v3", "username": "u", "password": "p", "container": "c" });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        csal_core::parse_config::<SwiftConfig>("swift", &c)?.settings()
    }

    #[test]
    fn specs_agree_with_structs() {
        csal_core::spec::assert_spec_agrees::<SwiftConfig>();
        csal_core::spec::assert_spec_agrees::<RackspaceConfig>();
        csal_core::spec::assert_spec_agrees::<OvhSwiftConfig>();
    }

    #[test]
    fn auth_version_follows_the_url() {
        assert!(matches!(swift(json!({})).unwrap().auth, AuthSpec::V3 { .. }));
        let v1 = swift(json!({ "auth_url": "http://127.0.0.1:8090/auth/v1.0" })).unwrap();
        assert!(matches!(v1.auth, AuthSpec::V1 { .. }));
        assert_eq!(v1.segment_container, "c_segments");
        assert_eq!(swift(json!({ "auth_version": "2" })).unwrap_err().kind(), ErrorKind::InvalidConfig);
    }

    #[test]
    fn bad_containers_and_segment_sizes_name_the_field() {
        let e = swift(json!({ "container": "a/b" })).unwrap_err();
        assert!(e.message().contains("'container'"), "{e}");
        let e = swift(json!({ "segment_container": "c" })).unwrap_err();
        assert!(e.message().contains("'segment_container'"), "{e}");
        let e = swift(json!({ "segment_size_mb": 0 })).unwrap_err();
        assert!(e.message().contains("'segment_size_mb'"), "{e}");
    }

    #[test]
    fn rackspace_preset_uses_identity_v2_and_the_region() {
        let c: RackspaceConfig = csal_core::parse_config(
            "rackspace",
            &json!({ "username": "u", "api_key": "k", "region": "lon", "container": "c" }),
        )
        .unwrap();
        match c.settings().unwrap().auth {
            AuthSpec::RaxV2 { url, region, internal, .. } => {
                assert_eq!(url, RACKSPACE_IDENTITY_URL);
                assert_eq!(region, "LON");
                assert!(!internal);
            }
            _ => panic!("rackspace must use identity v2.0"),
        }
        let bad: RackspaceConfig = csal_core::parse_config(
            "rackspace",
            &json!({ "username": "u", "api_key": "k", "region": "MARS", "container": "c" }),
        )
        .unwrap();
        assert_eq!(bad.settings().unwrap_err().kind(), ErrorKind::InvalidConfig);
    }

    #[test]
    fn ovh_preset_scopes_keystone_v3_to_the_project() {
        let c: OvhSwiftConfig = csal_core::parse_config(
            "ovh_swift",
            &json!({ "username": "user-x", "password": "p", "project_id": "abc", "region": "gra", "container": "c" }),
        )
        .unwrap();
        match c.settings().unwrap().auth {
            AuthSpec::V3 { url, project: ProjectScope::Id(id), region, interface, user_domain, .. } => {
                assert_eq!(url, OVH_AUTH_URL);
                assert_eq!(id, "abc");
                assert_eq!(region.as_deref(), Some("GRA"));
                assert_eq!(interface, "public");
                assert_eq!(user_domain, "Default");
            }
            _ => panic!("ovh must use Keystone v3 with a project id"),
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c: SwiftConfig = csal_core::parse_config(
            "swift",
            &json!({ "auth_url": "https://k/v3", "username": "u", "password": "hunter22", "container": "c",
                     "temp_url_key": "tempkey99" }),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter22") && !shown.contains("tempkey99"), "{shown}");
    }
}
