//! The contract every provider implements: [`StorageModule`].
//!
//! The seed's `initialize` + `authenticate` become construction from a typed
//! config (the registry's factory; no blocking network work there) plus an
//! optional [`StorageModule::refresh_credentials`]. Everything else maps one
//! to one onto the seed's `StorageModuleBase`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::{Result, StorageError};
use crate::range::ByteRange;
use crate::stream::ByteStream;

/// What the caller tells a write about the object.
///
/// `#[non_exhaustive]`: writes will take more hints (storage class,
/// retention); build it with [`WriteMeta::new`] and the `with_*` methods.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct WriteMeta {
    /// Suggested base name, e.g. `camera5/20251213T192000.mp4`. Slashes make
    /// folders; the provider sanitises it and adds a unique suffix, so two
    /// writes with the same hint never collide.
    pub key_hint: String,
    /// `Content-Type` stored with the object, where the provider can.
    pub content_type: Option<String>,
    /// User metadata, stored where the provider can (see `Capabilities`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl WriteMeta {
    /// Metadata with only a key hint.
    pub fn new(key_hint: impl Into<String>) -> Self {
        WriteMeta { key_hint: key_hint.into(), ..Default::default() }
    }
    /// The same with a content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }
}

/// A checksum of an object's bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checksum {
    /// `crc32c`, `md5`, `sha256`, ... (lowercase).
    pub algorithm: String,
    /// Lowercase hex.
    pub value: String,
}

impl Checksum {
    /// A CRC32C checksum (`value` as 8 lowercase hex digits).
    pub fn crc32c(value: u32) -> Self {
        Checksum { algorithm: "crc32c".into(), value: format!("{value:08x}") }
    }

    /// The value as a number, when this is a well-formed CRC32C.
    pub fn crc32c_value(&self) -> Option<u32> {
        let hex = self.value.len() == 8 && self.value.bytes().all(|b| b.is_ascii_hexdigit());
        (self.algorithm.eq_ignore_ascii_case("crc32c") && hex).then(|| u32::from_str_radix(&self.value, 16).ok())?
    }
}

/// What a successful write returns.
///
/// Exhaustive on purpose, like [`ObjectMeta`] and [`ListPage`]: every
/// provider builds it, and a new field should make each provider decide
/// what to put there rather than default silently.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WriteReceipt {
    /// Use this with read / stat / delete.
    pub object_id: String,
    /// Bytes written.
    pub size: u64,
    /// CRC32C of the bytes written, computed while streaming (the router
    /// fills it in when the provider does not).
    pub checksum: Option<Checksum>,
    /// The provider's ETag or version tag, when it returns one.
    pub etag: Option<String>,
    /// Name of the instance that took the write (filled in by the router).
    pub instance: Option<String>,
}

/// Metadata of one stored object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    /// The id to read, stat or delete it with.
    pub object_id: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time, where the provider keeps one.
    #[serde(with = "crate::time_format::option")]
    pub modified: Option<SystemTime>,
    /// Stored `Content-Type`, where the provider keeps one.
    pub content_type: Option<String>,
    /// The provider's ETag or version tag.
    pub etag: Option<String>,
    /// A checksum the provider reports (not necessarily CRC32C).
    pub checksum: Option<Checksum>,
    /// User metadata, where the provider keeps it.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// Metadata with only id and size known.
    pub fn new(object_id: impl Into<String>, size: u64) -> Self {
        ObjectMeta {
            object_id: object_id.into(),
            size,
            modified: None,
            content_type: None,
            etag: None,
            checksum: None,
            metadata: BTreeMap::new(),
        }
    }
}

/// A list query. `path` is a folder-like prefix of object ids ("" = all);
/// listing is recursive (flat, like S3 without a delimiter).
///
/// `#[non_exhaustive]`: listings will take more filters; build it with
/// [`ListRequest::new`] and the `with_*` methods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListRequest {
    /// Folder to list, without leading or trailing slash. "" lists everything.
    pub path: String,
    /// Only ids that start with `path/` + `prefix`.
    pub prefix: Option<String>,
    /// Only objects modified at or after this time.
    pub modified_after: Option<SystemTime>,
    /// Only objects modified before this time.
    pub modified_before: Option<SystemTime>,
    /// Page size wanted; providers may return fewer. `None` = provider default.
    pub limit: Option<usize>,
    /// Token from the previous page's `next_page`.
    pub continuation: Option<String>,
}

impl ListRequest {
    /// A listing of folder `path` (`""`: everything).
    pub fn new(path: impl Into<String>) -> Self {
        ListRequest { path: path.into(), ..Default::default() }
    }
    /// Only ids under `path/prefix`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }
    /// Ask for pages of at most `limit` objects.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
    /// Continue after a previous page ([`ListPage::next_page`]).
    pub fn with_continuation(mut self, token: Option<String>) -> Self {
        self.continuation = token;
        self
    }

    /// The id prefix this request selects: `path/prefix` (no leading slash).
    pub fn id_prefix(&self) -> String {
        let path = self.path.trim_matches('/');
        let prefix = self.prefix.as_deref().unwrap_or("");
        match (path.is_empty(), prefix.is_empty()) {
            (true, _) => prefix.to_owned(),
            (false, true) => format!("{path}/"),
            (false, false) => format!("{path}/{prefix}"),
        }
    }

    /// Refuse a request that could list outside the store's root or makes
    /// no sense: `path/prefix` ([`Self::id_prefix`]) follows the object-id
    /// rules ([`crate::ids::check_id_prefix`]), `limit` is at least 1.
    pub fn check(&self) -> Result<()> {
        if self.limit == Some(0) {
            return Err(StorageError::invalid_input("list limit must be at least 1"));
        }
        crate::ids::check_id_prefix(&self.id_prefix())
    }

    /// Whether an object passes the time-window filter (for providers that
    /// filter on the client side).
    pub fn matches_time(&self, meta: &ObjectMeta) -> bool {
        match meta.modified {
            Some(m) => {
                self.modified_after.is_none_or(|after| m >= after)
                    && self.modified_before.is_none_or(|before| m < before)
            }
            None => self.modified_after.is_none() && self.modified_before.is_none(),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ListPage {
    /// The objects of this page, in the provider's order.
    pub objects: Vec<ObjectMeta>,
    /// Pass back as `ListRequest::continuation` for the next page; `None` at the end.
    pub next_page: Option<String>,
}

/// How long a provider's temp file (an upload in progress) may sit untouched
/// before it is taken for the leftover of a writer that died (`kill -9`,
/// power cut) and swept. A live upload touches its file far more often.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);

/// Whether a temp file last modified at `modified` is a leftover to sweep
/// ([`STALE_TEMP_AGE`]); `false` when the time is unknown or in the future.
pub fn is_stale_temp(modified: Option<SystemTime>) -> bool {
    modified.and_then(|m| SystemTime::now().duration_since(m).ok()).is_some_and(|age| age > STALE_TEMP_AGE)
}

/// The seed's health status values.
///
/// Exhaustive on purpose: the seed fixes these three, and the admin UI,
/// the CLI and the delivery worker each decide on all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Works as expected.
    Ok,
    /// Works, with a problem the admin should see (nearly full, token expiring).
    Degraded,
    /// Does not work; `last_error` says why.
    Offline,
}

impl HealthStatus {
    /// `ok`, `degraded` or `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Ok => "ok",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Offline => "offline",
        }
    }
}

/// What `health_check` returns (the admin UI's Test button shows it).
///
/// `#[non_exhaustive]`: reports will carry more than a status and details;
/// build one with [`HealthReport::ok`], [`HealthReport::degraded`] or
/// [`HealthReport::offline`], then [`HealthReport::with_detail`] and
/// [`HealthReport::degrade`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// Overall state.
    pub status: HealthStatus,
    /// How long the check took, when it got an answer.
    #[serde(with = "crate::time_format::duration_ms_option", rename = "latency_ms")]
    pub latency: Option<Duration>,
    /// Why the status is not `ok` (secret-free).
    pub last_error: Option<String>,
    /// Provider facts for the admin (quota, free bytes, stale uploads, ...).
    pub details: BTreeMap<String, serde_json::Value>,
}

impl HealthReport {
    /// Detail key: bytes CSAL may still write to the target (free space
    /// less any reserve the instance keeps, or quota left). Providers that
    /// can tell report it; the capacity forecast reads it.
    pub const FREE_BYTES: &'static str = "free_bytes";

    /// A working target, answering in `latency`.
    pub fn ok(latency: Duration) -> Self {
        HealthReport { status: HealthStatus::Ok, latency: Some(latency), last_error: None, details: BTreeMap::new() }
    }
    /// A working target with a problem.
    pub fn degraded(latency: Option<Duration>, reason: impl Into<String>) -> Self {
        HealthReport {
            status: HealthStatus::Degraded,
            latency,
            last_error: Some(reason.into()),
            details: BTreeMap::new(),
        }
    }
    /// A target that failed its check with `error`.
    pub fn offline(error: &StorageError) -> Self {
        HealthReport {
            status: HealthStatus::Offline,
            latency: None,
            last_error: Some(error.to_string()),
            details: BTreeMap::new(),
        }
    }
    /// Lower an `ok` report to `degraded` with this reason (an offline or
    /// already degraded report keeps its status and first reason).
    pub fn degrade(&mut self, reason: impl Into<String>) {
        if self.status == HealthStatus::Ok {
            self.status = HealthStatus::Degraded;
            self.last_error = Some(reason.into());
        }
    }

    /// [`HealthReport::FREE_BYTES`], when the provider reported it.
    pub fn free_bytes(&self) -> Option<u64> {
        self.details.get(Self::FREE_BYTES).and_then(serde_json::Value::as_u64)
    }

    /// The same report with one more detail.
    pub fn with_detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// What a provider can do. The conformance suite and the admin UI read it;
/// a conformance test is skipped only because of a capability.
///
/// `#[non_exhaustive]`: every new optional feature of the contract adds a
/// capability, and providers that do not set it must keep compiling. Start
/// from [`Capabilities::BASIC`] (the default), [`Capabilities::OBJECT_STORE`]
/// or [`Capabilities::FILE_SYNC`] and add with the `const` `with_*` setters:
///
/// ```
/// use csal_core::Capabilities;
/// const CAPS: Capabilities = Capabilities::FILE_SYNC.with_max_object_size(Some(50 << 30)).with_presign(true);
/// assert!(CAPS.multipart && CAPS.presign && !CAPS.user_metadata);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Reads of a byte range fetch only that range.
    pub ranged_read: bool,
    /// Listings come in pages with continuation tokens.
    pub list_pagination: bool,
    /// `presign_read` gives URLs that work without credentials for a while.
    pub presign: bool,
    /// Large objects are uploaded in parts (multipart, chunked, resumable).
    pub multipart: bool,
    /// The provider refuses to overwrite an existing object atomically.
    pub conditional_create: bool,
    /// The `Content-Type` given at write is stored and returned by stat.
    pub content_type: bool,
    /// User metadata given at write is stored and returned by stat.
    pub user_metadata: bool,
    /// Objects carry a modification time.
    pub modified_time: bool,
    /// Largest object the provider accepts; `None`: no known limit.
    pub max_object_size: Option<u64>,
    /// The provider keeps the CRC32C of what CSAL wrote (object metadata, an
    /// xattr) and hands it back on full reads, which the core then verifies
    /// (see the provider's page for which objects). Without it a read is
    /// verified only against a checksum the caller passes
    /// ([`crate::StorageRouter::read_verified`]).
    pub verified_reads: bool,
    /// `copy` runs on the server (or filesystem) without the bytes passing
    /// through CSAL; otherwise it is streamed through (bounded memory).
    pub server_side_copy: bool,
    /// The provider itself can make objects immutable (S3 Object Lock):
    /// [`StorageModule::set_legal_hold`] works and a held or retained
    /// object's delete fails with [`crate::ErrorKind::Locked`], whoever asks.
    pub legal_hold: bool,
}

impl Capabilities {
    /// Ranged reads, paged listings and modification times, nothing more
    /// (the default); providers state what they add with the `with_*`
    /// setters (`Capabilities::BASIC.with_multipart(true)`).
    pub const BASIC: Capabilities = Capabilities {
        ranged_read: true,
        list_pagination: true,
        presign: false,
        multipart: false,
        conditional_create: false,
        content_type: false,
        user_metadata: false,
        modified_time: true,
        max_object_size: None,
        verified_reads: false,
        server_side_copy: false,
        legal_hold: false,
    };
    /// An object store: parts, conditional create, content type and user metadata too.
    pub const OBJECT_STORE: Capabilities = Capabilities {
        multipart: true,
        conditional_create: true,
        content_type: true,
        user_metadata: true,
        ..Self::BASIC
    };
    /// A file-sync service or file server with chunked uploads that refuses to overwrite.
    pub const FILE_SYNC: Capabilities = Capabilities { multipart: true, conditional_create: true, ..Self::BASIC };
}

/// `const` setters of [`Capabilities`], one per field (the struct is
/// `#[non_exhaustive]`, so other crates cannot use struct literals).
macro_rules! capability_setters {
    ($($setter:ident => $field:ident: $ty:ty;)*) => {
        impl Capabilities {
            $(
                #[doc = concat!("This with [`Capabilities::", stringify!($field), "`] set to `value`.")]
                #[must_use]
                pub const fn $setter(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

capability_setters! {
    with_ranged_read => ranged_read: bool;
    with_list_pagination => list_pagination: bool;
    with_presign => presign: bool;
    with_multipart => multipart: bool;
    with_conditional_create => conditional_create: bool;
    with_content_type => content_type: bool;
    with_user_metadata => user_metadata: bool;
    with_modified_time => modified_time: bool;
    with_max_object_size => max_object_size: Option<u64>;
    with_verified_reads => verified_reads: bool;
    with_server_side_copy => server_side_copy: bool;
    with_legal_hold => legal_hold: bool;
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::BASIC
    }
}

/// Provider-side staging left by uploads that never finished (a writer
/// killed mid-upload): S3 incomplete multipart uploads, Swift segments
/// without a manifest. They cost storage and are invisible to `list`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StaleUploads {
    /// Leftovers older than the instance's age limit.
    pub count: u64,
    /// Bytes they hold.
    pub bytes: u64,
    /// How many of them this call removed.
    pub removed: u64,
}

impl StaleUploads {
    /// Health detail keys ([`StaleUploads::add_to`]).
    pub const COUNT: &'static str = "stale_uploads";
    /// Health detail key: bytes the leftovers hold.
    pub const BYTES: &'static str = "stale_upload_bytes";

    /// Report the leftovers found in a health report, as details. The
    /// status stays as it is: leftovers do not impair the target, and the
    /// maintenance run (`csal fsck`, the scheduled reconciliation) removes them.
    pub fn add_to(&self, report: &mut HealthReport) {
        report.details.insert(Self::COUNT.to_owned(), self.count.into());
        report.details.insert(Self::BYTES.to_owned(), self.bytes.into());
    }

    /// Longest a health check spends counting leftovers: thousands of them
    /// (one listing call each on some providers) must not turn a working
    /// target offline by timing out the whole check.
    pub const HEALTH_CHECK_LIMIT: Duration = Duration::from_secs(5);

    /// Count leftovers with `count` (the provider's `stale_uploads(false)`)
    /// into a health report, for at most [`Self::HEALTH_CHECK_LIMIT`]. A
    /// count that fails (listing uploads may need a permission the instance
    /// lacks) or takes too long is a detail, never a failed check.
    pub async fn count_into(report: &mut HealthReport, count: impl std::future::Future<Output = Result<StaleUploads>>) {
        let error = match tokio::time::timeout(Self::HEALTH_CHECK_LIMIT, count).await {
            Ok(Ok(stale)) => return stale.add_to(report),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "too many to count here; `csal fsck` does".to_owned(),
        };
        report.details.insert(Self::ERROR.to_owned(), error.into());
    }

    /// Detail key of a count that could not be made ([`StaleUploads::count_into`]).
    pub const ERROR: &'static str = "stale_uploads_error";

    /// The leftovers a health report holds ([`StaleUploads::add_to`]).
    pub fn of(report: &HealthReport) -> Option<StaleUploads> {
        let count = report.details.get(Self::COUNT)?.as_u64()?;
        let bytes = report.details.get(Self::BYTES).and_then(serde_json::Value::as_u64).unwrap_or(0);
        Some(StaleUploads { count, bytes, removed: 0 })
    }
}

/// A storage instance: one configured provider (the seed's `StorageModuleBase`).
///
/// Object ids are chosen by the provider on write and are opaque to callers.
/// Every method must turn provider failures into a classified `StorageError`;
/// none may panic on bad input.
#[async_trait]
pub trait StorageModule: Send + Sync + 'static {
    /// What this instance can do.
    fn capabilities(&self) -> Capabilities;

    /// Check configuration and basic connectivity (the admin Test button):
    /// a cheap call such as HEAD bucket.
    async fn validate(&self) -> Result<()>;

    /// Fetch or refresh credentials ahead of time. Providers with static
    /// credentials keep the default no-op.
    async fn refresh_credentials(&self) -> Result<()> {
        Ok(())
    }

    /// Store `body` under a new, unique object id derived from `meta.key_hint`.
    /// Never overwrites an existing object. Pulls `body` chunk by chunk.
    async fn write(&self, body: ByteStream, meta: WriteMeta) -> Result<WriteReceipt>;

    /// Stream an object, or the part of it selected by `range` (see [`ByteRange`]).
    async fn read(&self, object_id: &str, range: Option<ByteRange>) -> Result<ByteStream>;

    /// Delete an object. Deleting a missing object succeeds.
    async fn delete(&self, object_id: &str) -> Result<()>;

    /// One page of objects under a path.
    async fn list(&self, request: &ListRequest) -> Result<ListPage>;

    /// Metadata of one object.
    async fn stat(&self, object_id: &str) -> Result<ObjectMeta>;

    /// Structured health with latency. Never errors: problems are a status.
    async fn health_check(&self) -> HealthReport;

    /// Copy an object to a new object of this instance, named from
    /// `meta.key_hint` like a write (a fresh id: never the source, never an
    /// existing object). Providers that can copy on the server override it
    /// and set [`Capabilities::server_side_copy`]; the default streams the
    /// bytes through CSAL (a full, verified read into a write), memory
    /// bounded as for any write.
    async fn copy(&self, object_id: &str, meta: WriteMeta) -> Result<WriteReceipt> {
        let body = self.read(object_id, None).await?;
        self.write(body, meta).await
    }

    /// A time-limited URL to read the object without credentials.
    async fn presign_read(&self, object_id: &str, expires_in: Duration) -> Result<String> {
        let _ = (object_id, expires_in);
        Err(StorageError::unsupported("this provider cannot presign URLs"))
    }

    /// Put a server-side legal hold on an object (`hold`) or lift it. Only
    /// providers with [`Capabilities::legal_hold`] can; the others keep this
    /// default. CSAL's own holds (the catalog's) work everywhere; this makes
    /// the provider refuse the delete too, whoever asks.
    async fn set_legal_hold(&self, object_id: &str, hold: bool) -> Result<()> {
        let _ = (object_id, hold);
        Err(StorageError::unsupported("this provider cannot put objects under a legal hold"))
    }

    /// Find the staging of uploads that never finished and is older than the
    /// instance's age limit ([`StaleUploads`]); remove it when `remove`. The
    /// default finds nothing: providers whose staging expires on its own
    /// (Azure uncommitted blocks, GCS resumable sessions) or that sweep
    /// their temp files on health checks ([`STALE_TEMP_AGE`]) keep it.
    async fn stale_uploads(&self, remove: bool) -> Result<StaleUploads> {
        let _ = remove;
        Ok(StaleUploads::default())
    }

    /// Release clients, pools and file handles before exit.
    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }
}
