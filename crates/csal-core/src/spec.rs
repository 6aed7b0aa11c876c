//! Config specs: the fields a provider's instance config has (key, label,
//! type, default, help), which drive the CLI, the admin form and the check
//! of a config before it reaches a provider.
//!
//! A provider declares its config once, as a struct with
//! [`#[csal_core::config]`](crate::config): the struct is what the provider
//! parses, and its [`ConfigSpec::FIELDS`] is generated from it (defaults
//! written once, in the field attribute). [`assert_spec_agrees`] is the test
//! every provider runs to show that the two agree.

use std::time::Duration;

use crate::error::{Result, StorageError};

/// How an admin thinks of a provider (groups the "add module" form).
///
/// `#[non_exhaustive]`: a new kind of provider may need its own group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
#[serde(rename_all = "snake_case")]
pub enum ProviderCategory {
    /// S3 and its kind: buckets of objects.
    ObjectStorage,
    /// Dropbox, OneDrive, Drive, ...: files in a user's account.
    FileSync,
    /// File servers: WebDAV, SFTP, FTP.
    NetworkProtocol,
    /// A disk of this machine.
    Local,
    /// Tables of an SQL database.
    Database,
}

/// The type of one config field; drives the CLI, the admin form and validation.
///
/// `#[non_exhaustive]`: new value types (durations, sizes) will come; a form
/// that meets one it does not know shows a text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
#[serde(rename_all = "snake_case", tag = "type", content = "options")]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// A number (integer or decimal).
    Number,
    /// On or off.
    Bool,
    /// A password, key or token: write-only in forms, masked everywhere.
    Secret,
    /// A multi-line secret such as a private key or a service-account JSON.
    SecretMultiline,
    /// One of these values.
    Select(&'static [&'static str]),
    /// An `http(s)://` URL.
    Url,
    /// A filesystem path on the server.
    Path,
}

impl FieldKind {
    /// Whether values of this kind are secrets (write-only, masked).
    pub fn is_secret(self) -> bool {
        matches!(self, FieldKind::Secret | FieldKind::SecretMultiline)
    }
}

/// One field of a provider's config spec.
///
/// `#[non_exhaustive]`: fields gain attributes (`aliases` and
/// `credential_target` came later); build one with the `const` constructors
/// ([`ConfigField::text`], [`ConfigField::of_kind`], ...) and setters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ConfigField {
    /// The config key (JSON object key).
    pub key: &'static str,
    /// What the form and the CLI call it.
    pub label: &'static str,
    /// Its type.
    pub kind: FieldKind,
    /// The config is refused without it.
    pub required: bool,
    /// Default as JSON text (`"30"`, `"true"`, `"\"us-east-1\""`).
    pub default: Option<&'static str>,
    /// One line for the form and `csal providers`.
    pub help: &'static str,
    /// The provider's own page about this value.
    pub doc_url: Option<&'static str>,
    /// Older names of this key, still accepted so that stored configs keep
    /// working (`timeout_secs` for `read_timeout_secs`).
    pub aliases: &'static [&'static str],
    /// The field says where credentials are sent (a server URL, a host, a
    /// token endpoint): changing it requires the secrets to be entered
    /// again, so a stored password cannot be redirected to another host.
    pub credential_target: bool,
}

impl ConfigField {
    const fn new(key: &'static str, label: &'static str, kind: FieldKind) -> Self {
        ConfigField {
            key,
            label,
            kind,
            required: false,
            default: None,
            help: "",
            doc_url: None,
            aliases: &[],
            credential_target: false,
        }
    }
    /// An optional text field.
    pub const fn text(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Text)
    }
    /// An optional number field.
    pub const fn number(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Number)
    }
    /// An optional on/off field.
    pub const fn bool(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Bool)
    }
    /// An optional secret field.
    pub const fn secret(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Secret)
    }
    /// An optional multi-line secret field.
    pub const fn secret_multiline(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::SecretMultiline)
    }
    /// An optional choice among `options` field.
    pub const fn select(key: &'static str, label: &'static str, options: &'static [&'static str]) -> Self {
        Self::new(key, label, FieldKind::Select(options))
    }
    /// An optional URL field.
    pub const fn url(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Url)
    }
    /// An optional path field.
    pub const fn path(key: &'static str, label: &'static str) -> Self {
        Self::new(key, label, FieldKind::Path)
    }
    /// A field of `kind` (what `#[csal_core::config]` generates).
    pub const fn of_kind(key: &'static str, label: &'static str, kind: FieldKind) -> Self {
        Self::new(key, label, kind)
    }
    /// Mark it required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// Its default, as JSON text.
    pub const fn default(mut self, json: &'static str) -> Self {
        self.default = Some(json);
        self
    }
    /// Its help line.
    pub const fn help(mut self, help: &'static str) -> Self {
        self.help = help;
        self
    }
    /// Link to the provider's page on this value.
    pub const fn doc(mut self, url: &'static str) -> Self {
        self.doc_url = Some(url);
        self
    }
    /// Older key names still accepted.
    pub const fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }
    /// Mark it as saying where credentials go (see the field).
    pub const fn credential_target(mut self) -> Self {
        self.credential_target = true;
        self
    }

    /// Whether `key` names this field (its key or an older alias).
    pub fn answers_to(&self, key: &str) -> bool {
        self.key == key || self.aliases.contains(&key)
    }

    /// This field's value in `config`, under its key or an alias.
    pub fn value_in<'a>(
        &self,
        config: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Option<&'a serde_json::Value> {
        config.get(self.key).or_else(|| self.aliases.iter().find_map(|a| config.get(*a)))
    }
}

/// The field `key` of `fields`, at compile time (a preset reusing the spec
/// of its protocol's fields). A missing key fails the build.
pub const fn spec_field(fields: &'static [ConfigField], key: &str) -> ConfigField {
    let mut i = 0;
    while i < fields.len() {
        let k = fields[i].key.as_bytes();
        let want = key.as_bytes();
        if k.len() == want.len() {
            let mut j = 0;
            while j < k.len() && k[j] == want[j] {
                j += 1;
            }
            if j == k.len() {
                return fields[i];
            }
        }
        i += 1;
    }
    panic!("no such field in the spec")
}

/// A config struct and the spec generated from it by
/// [`#[csal_core::config]`](crate::config).
pub trait ConfigSpec: serde::de::DeserializeOwned {
    /// The provider_type the config belongs to.
    const PROVIDER: &'static str;
    /// How the admin UI names the provider ("OpenStack Swift").
    const DISPLAY_NAME: &'static str;
    /// Group of the "add module" form.
    const CATEGORY: ProviderCategory;
    /// One sentence for the "add module" form.
    const DESCRIPTION: &'static str;
    /// The spec: one entry per struct field, in declaration order.
    const FIELDS: &'static [ConfigField];

    /// Parse a config; errors name the field and never echo a value.
    fn parse(config: &serde_json::Value) -> Result<Self> {
        parse_config(Self::PROVIDER, config)
    }
}

/// The three timeouts every network provider has, under the same keys
/// everywhere: `connect_timeout_secs`, `read_timeout_secs` and (for
/// providers with bounded requests) `request_timeout_secs`.
///
/// Exhaustive on purpose: these are the three timeout keys every network
/// provider shares; a fourth would be a change to every provider's spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Longest wait to open a connection.
    pub connect: Duration,
    /// Longest wait for the next bytes from the server.
    pub read: Duration,
    /// Limit for a whole request that does not stream a body (metadata
    /// calls, one upload part); `None` when the provider has no such key.
    pub request: Option<Duration>,
}

impl Timeouts {
    /// Seconds from config keys to durations; zero is refused naming the key.
    pub fn from_secs(connect: u64, read: u64, request: Option<u64>) -> Result<Timeouts> {
        let secs = |v: u64, key: &str| {
            if v == 0 {
                Err(StorageError::invalid_config(format!("field '{key}' must be at least 1 (seconds)")))
            } else {
                Ok(Duration::from_secs(v))
            }
        };
        Ok(Timeouts {
            connect: secs(connect, "connect_timeout_secs")?,
            read: secs(read, "read_timeout_secs")?,
            request: request.map(|r| secs(r, "request_timeout_secs")).transpose()?,
        })
    }
}

/// Check `config` against a field spec: an object, no unknown field (older
/// aliases are known), every required field present, each of the right
/// type. Errors are `InvalidConfig` naming the field, never its value.
pub fn check_config(provider_type: &str, fields: &[ConfigField], config: &serde_json::Value) -> Result<()> {
    let invalid = |msg: String| Err(StorageError::invalid_config(msg).with_provider(provider_type.to_owned()));
    let Some(map) = config.as_object() else {
        return invalid("config must be a JSON object".to_owned());
    };
    for key in map.keys() {
        let Some(field) = fields.iter().find(|f| f.answers_to(key)) else {
            let known: Vec<&str> = fields.iter().map(|f| f.key).collect();
            return invalid(format!("unknown field '{key}' (known fields: {})", known.join(", ")));
        };
        if key != field.key && map.contains_key(field.key) {
            return invalid(format!("field '{}' is given twice (also as its old name '{key}')", field.key));
        }
    }
    for field in fields {
        let value = field.value_in(map);
        let missing = value.is_none_or(is_blank);
        if missing {
            if field.required {
                return invalid(format!("missing required field '{}' ({})", field.key, field.label));
            }
            continue;
        }
        let value = value.expect("present");
        let type_ok = match field.kind {
            FieldKind::Text | FieldKind::Secret | FieldKind::SecretMultiline | FieldKind::Path => value.is_string(),
            FieldKind::Url => value.as_str().is_some_and(looks_like_url),
            FieldKind::Number => value.is_number(),
            FieldKind::Bool => value.is_boolean(),
            FieldKind::Select(options) => value.as_str().is_some_and(|v| options.contains(&v)),
        };
        if !type_ok {
            let expected = match field.kind {
                FieldKind::Text | FieldKind::Path => "a string".to_owned(),
                FieldKind::Secret | FieldKind::SecretMultiline => "a string (secret)".to_owned(),
                FieldKind::Url => "an http:// or https:// URL".to_owned(),
                FieldKind::Number => "a number".to_owned(),
                FieldKind::Bool => "true or false".to_owned(),
                FieldKind::Select(options) => format!("one of {}", options.join(", ")),
            };
            return invalid(format!("field '{}' must be {expected}", field.key));
        }
    }
    Ok(())
}

fn looks_like_url(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.chars().any(char::is_whitespace))
}

/// `config` with values stored under an older key name moved to the
/// field's current key (what forms and the API show, so that an edit saves
/// under the current name).
pub fn current_keys(fields: &[ConfigField], config: &serde_json::Value) -> serde_json::Value {
    let mut out = config.clone();
    if let Some(map) = out.as_object_mut() {
        for field in fields {
            for alias in field.aliases {
                if let Some(v) = map.remove(*alias) {
                    map.entry(field.key.to_owned()).or_insert(v);
                }
            }
        }
    }
    out
}

/// Null or an empty string: a field left empty in a form.
pub fn is_blank(v: &serde_json::Value) -> bool {
    v.is_null() || v.as_str().is_some_and(str::is_empty)
}

/// Parse a typed config from JSON; errors name the field that failed.
/// Call after [`check_config`] (the router does), so values of secret fields
/// are never echoed.
pub fn parse_config<T: serde::de::DeserializeOwned>(provider_type: &str, config: &serde_json::Value) -> Result<T> {
    serde_path_to_error::deserialize(config).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde's message can quote the offending value; keep only its class.
        let what = inner.to_string();
        let what = what.split(':').next().unwrap_or("invalid value").trim().to_owned();
        StorageError::invalid_config(format!("field '{path}': {what}")).with_provider(provider_type.to_owned())
    })
}

/// The default of a field whose type is not a string, number or bool (a
/// select enum), from the default's text in the spec. Used by the code
/// `#[csal_core::config]` generates; [`assert_spec_agrees`] proves every
/// such default parses.
#[doc(hidden)]
pub fn default_from_str<T: serde::de::DeserializeOwned>(text: &'static str) -> T {
    use serde::de::IntoDeserializer;
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = text.into_deserializer();
    T::deserialize(de).unwrap_or_else(|e| panic!("config default {text:?} does not parse: {e}"))
}

/// The field names serde knows for `T` (with aliases, where serde lists them).
fn serde_field_names<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
    struct Names(Vec<&'static str>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> serde::Deserializer<'de> for &mut Names {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> std::result::Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> std::result::Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut names = Names(Vec::new());
    let _ = T::deserialize(&mut names);
    names.0
}

/// A value of `field`'s kind that a struct field of the matching type accepts.
fn sample_value(field: &ConfigField) -> serde_json::Value {
    use serde_json::json;
    match field.kind {
        FieldKind::Text => json!("sample"),
        FieldKind::Number => json!(7),
        FieldKind::Bool => json!(true),
        FieldKind::Secret => json!(SAMPLE_SECRET),
        FieldKind::SecretMultiline => json!(format!("-----BEGIN SAMPLE-----\n{SAMPLE_SECRET}\n-----END SAMPLE-----")),
        FieldKind::Select(options) => json!(options.first().copied().unwrap_or_default()),
        FieldKind::Url => json!("https://example.com/sample"),
        FieldKind::Path => json!("/tmp/csal-sample"),
    }
}

const SAMPLE_SECRET: &str = "s3cr3t-sample-value";

/// Panic (in a test) unless the spec `T::FIELDS` and the struct `T` agree:
/// the same keys; required in the spec exactly when the struct needs the
/// key; every default, select option, alias and value of the spec's type
/// accepted by the struct; secret values absent from `Debug`. Every
/// provider's config test calls this.
pub fn assert_spec_agrees<T: ConfigSpec + std::fmt::Debug>() {
    assert_fields_agree::<T>(T::PROVIDER, T::FIELDS, true);
}

/// [`assert_spec_agrees`] for a spec that admits only some of the struct's
/// keys (presets sharing one config struct).
pub fn assert_spec_within<T: serde::de::DeserializeOwned + std::fmt::Debug>(provider: &str, fields: &[ConfigField]) {
    assert_fields_agree::<T>(provider, fields, false);
}

fn assert_fields_agree<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    provider: &str,
    fields: &[ConfigField],
    exact: bool,
) {
    let names = serde_field_names::<T>();
    assert!(!names.is_empty(), "{provider}: the config type is not a struct");
    for f in fields {
        assert!(names.contains(&f.key), "{provider}: spec field '{}' is not a field of the config struct", f.key);
    }
    if exact {
        for n in &names {
            assert!(fields.iter().any(|f| f.answers_to(n)), "{provider}: struct field '{n}' is missing from the spec");
        }
    }
    let minimal: serde_json::Map<String, serde_json::Value> =
        fields.iter().filter(|f| f.required).map(|f| (f.key.to_owned(), sample_value(f))).collect();
    let parses = |map: &serde_json::Map<String, serde_json::Value>, what: &str| {
        let value = serde_json::Value::Object(map.clone());
        check_config(provider, fields, &value)
            .unwrap_or_else(|e| panic!("{provider}: the spec refuses {what}: {}", e.message()));
        serde_json::from_value::<T>(value).unwrap_or_else(|e| panic!("{provider}: the struct refuses {what}: {e}"))
    };
    parses(&minimal, "a config of only the required fields");
    for f in fields {
        // A shared struct (presets) may keep a field optional that one
        // preset requires; only an exact spec must match the struct here.
        if f.required && exact {
            let mut without = minimal.clone();
            without.remove(f.key);
            assert!(
                serde_json::from_value::<T>(serde_json::Value::Object(without)).is_err(),
                "{provider}: field '{}' is required in the spec but not in the struct",
                f.key
            );
        }
        let mut with = minimal.clone();
        with.insert(f.key.to_owned(), sample_value(f));
        parses(&with, &format!("a {:?} value for '{}'", f.kind, f.key));
        if let Some(default) = f.default {
            let value: serde_json::Value = serde_json::from_str(default)
                .unwrap_or_else(|e| panic!("{provider}: default of '{}' is not JSON: {e}", f.key));
            with.insert(f.key.to_owned(), value);
            parses(&with, &format!("the default of '{}'", f.key));
        }
        if let FieldKind::Select(options) = f.kind {
            for option in options {
                with.insert(f.key.to_owned(), serde_json::json!(option));
                parses(&with, &format!("option '{option}' of '{}'", f.key));
            }
        }
        for alias in f.aliases {
            let mut aliased = minimal.clone();
            aliased.remove(f.key);
            aliased.insert((*alias).to_owned(), sample_value(f));
            parses(&aliased, &format!("the old name '{alias}' of '{}'", f.key));
        }
    }
    let mut secrets = minimal.clone();
    for f in fields.iter().filter(|f| f.kind.is_secret()) {
        secrets.insert(f.key.to_owned(), sample_value(f));
    }
    let shown = format!("{:?}", parses(&secrets, "a config with every secret set"));
    assert!(!shown.contains(SAMPLE_SECRET), "{provider}: Debug of the config shows a secret: {shown}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    const FIELDS: &[ConfigField] = &[
        ConfigField::text("bucket", "Bucket").required(),
        ConfigField::url("endpoint", "Endpoint"),
        ConfigField::number("part_size_mb", "Part size"),
        ConfigField::secret("secret_key", "Secret key"),
        ConfigField::select("mode", "Mode", &["a", "b"]),
        ConfigField::number("read_timeout_secs", "Read timeout").aliases(&["timeout_secs"]),
    ];

    fn err(cfg: serde_json::Value) -> String {
        let e = check_config("t", FIELDS, &cfg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        e.message().to_owned()
    }

    #[test]
    fn config_errors_name_the_field() {
        assert!(err(json!({})).contains("'bucket'"));
        assert!(err(json!({"bucket": ""})).contains("'bucket'"));
        assert!(err(json!({"bucket": "b", "nope": 1})).contains("'nope'"));
        assert!(err(json!({"bucket": "b", "endpoint": "ftp://x"})).contains("'endpoint'"));
        assert!(err(json!({"bucket": "b", "part_size_mb": "8"})).contains("'part_size_mb'"));
        assert!(err(json!({"bucket": "b", "mode": "c"})).contains("'mode'"));
        assert!(err(json!([1])).contains("JSON object"));
        check_config("t", FIELDS, &json!({"bucket": "b", "endpoint": "http://127.0.0.1:9000", "mode": "a"})).unwrap();
    }

    #[test]
    fn old_key_names_are_accepted_and_checked_but_not_twice() {
        check_config("t", FIELDS, &json!({"bucket": "b", "timeout_secs": 30})).unwrap();
        assert!(err(json!({"bucket": "b", "timeout_secs": "30"})).contains("'read_timeout_secs'"));
        let twice = err(json!({"bucket": "b", "timeout_secs": 30, "read_timeout_secs": 30}));
        assert!(twice.contains("twice"), "{twice}");
    }

    #[test]
    fn old_key_names_are_shown_under_the_current_one() {
        let shown = current_keys(FIELDS, &json!({"bucket": "b", "timeout_secs": 30}));
        assert_eq!(shown, json!({"bucket": "b", "read_timeout_secs": 30}));
        check_config("t", FIELDS, &shown).unwrap();
    }

    #[test]
    fn type_errors_do_not_echo_secret_values() {
        let m = err(json!({"bucket": "b", "secret_key": 1234567}));
        assert!(m.contains("'secret_key'") && !m.contains("1234567"));
    }

    #[test]
    fn parse_config_names_the_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct C {
            n: u32,
        }
        let e = parse_config::<C>("t", &json!({"n": "topsecretvalue"})).unwrap_err();
        assert!(e.message().contains("'n'"), "{e}");
        assert!(!e.to_string().contains("topsecretvalue"));
    }

    #[test]
    fn zero_timeouts_are_refused_by_key() {
        let e = Timeouts::from_secs(10, 0, Some(5)).unwrap_err();
        assert!(e.message().contains("'read_timeout_secs'"), "{e}");
        let t = Timeouts::from_secs(10, 60, None).unwrap();
        assert_eq!((t.connect, t.read, t.request), (Duration::from_secs(10), Duration::from_secs(60), None));
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Plain {
        bucket: String,
        #[serde(default)]
        size: Option<u64>,
    }

    #[test]
    fn agreement_check_finds_missing_and_mistyped_fields() {
        let good = [ConfigField::text("bucket", "B").required(), ConfigField::number("size", "S")];
        assert_fields_agree::<Plain>("t", &good, true);
        let missing = std::panic::catch_unwind(|| {
            assert_fields_agree::<Plain>("t", &[ConfigField::text("bucket", "B").required()], true)
        });
        assert!(missing.is_err());
        let mistyped = std::panic::catch_unwind(|| {
            assert_fields_agree::<Plain>(
                "t",
                &[ConfigField::text("bucket", "B").required(), ConfigField::text("size", "S")],
                true,
            )
        });
        assert!(mistyped.is_err());
        let not_required = std::panic::catch_unwind(|| {
            assert_fields_agree::<Plain>(
                "t",
                &[ConfigField::text("bucket", "B"), ConfigField::number("size", "S")],
                true,
            )
        });
        assert!(not_required.is_err());
    }
}

#[cfg(test)]
mod derive_tests {
    use super::*;
    use crate::SecretString;
    use serde_json::json;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
        Safe,
    }

    /// A config as providers declare it.
    #[crate::config(
        provider = "sample",
        name = "Sample",
        category = local,
        description = "A config as providers declare it.",
        timeouts(connect = 10, read = 60, read_alias = "timeout_secs")
    )]
    #[derive(Clone)]
    struct SampleConfig {
        /// Where it goes.
        #[field(label = "Server", url, credential_target)]
        url: String,
        #[field(label = "Password")]
        password: Option<SecretString>,
        #[field(label = "Mode", select = ["fast", "safe"], default = "safe")]
        mode: Mode,
        #[field(label = "Part size (MiB)", default = 8, help = "Size of each part.")]
        part_size_mb: u64,
        #[field(label = "Region", default = "us-east-1", alias = "location")]
        region: String,
    }

    #[test]
    fn the_spec_is_generated_from_the_struct() {
        assert_spec_agrees::<SampleConfig>();
        let f = |k: &str| SampleConfig::FIELDS.iter().find(|f| f.key == k).copied().unwrap();
        assert!(f("url").required && f("url").credential_target && f("url").kind == FieldKind::Url);
        assert_eq!(f("url").help, "Where it goes.");
        assert!(!f("password").required && f("password").kind == FieldKind::Secret);
        assert_eq!(f("mode").default, Some("\"safe\""));
        assert_eq!(f("part_size_mb").default, Some("8"));
        assert_eq!(f("part_size_mb").help, "Size of each part.");
        assert_eq!(f("region").aliases, &["location"]);
        assert_eq!(f("read_timeout_secs").aliases, &["timeout_secs"]);
        assert!(SampleConfig::FIELDS.iter().all(|f| f.key != "request_timeout_secs"));
    }

    #[test]
    fn defaults_and_old_names_reach_the_struct() {
        let c = SampleConfig::parse(&json!({"url": "https://h", "timeout_secs": 5, "location": "eu"})).unwrap();
        assert_eq!((c.mode, c.part_size_mb, c.region.as_str()), (Mode::Safe, 8, "eu"));
        let t = c.timeouts().unwrap();
        assert_eq!((t.connect.as_secs(), t.read.as_secs(), t.request), (10, 5, None));
        let e = SampleConfig::parse(&json!({"url": "https://h", "nope": 1})).unwrap_err();
        assert!(e.message().contains("nope"), "{e}");
    }

    #[test]
    fn debug_masks_secrets() {
        let c = SampleConfig::parse(&json!({"url": "https://h", "password": "hunter22"})).unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("https://h") && !shown.contains("hunter22"), "{shown}");
    }
}
