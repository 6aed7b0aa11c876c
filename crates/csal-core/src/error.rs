//! `StorageError`: one error type for every provider, classified so callers
//! (the recording engine, the retry layer, the admin UI) can decide what to do.
//!
//! The seed's three classes (Auth / Transient / Permanent) are kept as
//! [`ErrorClass`]; [`ErrorKind`] carries the finer distinction callers need.
//! `Display` is one line, built only from our own message and context fields,
//! never from a provider SDK's debug dump, and the router scrubs configured
//! secret values out of it before an error leaves an instance.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// What every masked secret is shown as, in scrubbed errors and masked
/// configs (`csal_core::secret::MASK`).
pub const MASK: &str = "********";

/// Result alias used across CSAL.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The seed's three error classes: what a caller should do next.
///
/// Exhaustive on purpose: every caller's decision (fix the config, retry,
/// give up) is one of these three, so a `match` needs no fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Credentials are missing, wrong, expired or lack permission: fix the config.
    Auth,
    /// May succeed if tried again later (network, throttling, server trouble).
    Transient,
    /// Will fail again as-is (bad input, missing object, unsupported, ...).
    Permanent,
}

/// What went wrong, precisely enough to act on.
///
/// `#[non_exhaustive]`: new failure modes get their own kind (as `Locked`
/// did). A `match` outside csal-core needs a wildcard arm: decide there from
/// [`ErrorKind::class`], which every kind has.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Authentication or authorisation failed.
    Auth,
    /// Network trouble, server errors, throttling: retry later.
    Transient,
    /// The operation did not finish in time.
    Timeout,
    /// The provider asked us to slow down (429, SlowDown, ...).
    RateLimited,
    /// Data came back short or did not match its checksum.
    Integrity,
    /// The object (or container) does not exist.
    NotFound,
    /// The target already exists and we refuse to overwrite it.
    AlreadyExists,
    /// An argument is malformed: hostile object id, bad range, bad key hint.
    InvalidInput,
    /// The instance configuration is malformed or incomplete.
    InvalidConfig,
    /// The provider cannot do this at all.
    Unsupported,
    /// The requested byte range starts past the end of the object.
    RangeNotSatisfiable,
    /// The storage is full or the account quota is used up.
    QuotaExceeded,
    /// The provider refuses to delete or change the object: a server-side
    /// legal hold or retention period (S3 Object Lock) protects it.
    Locked,
    /// The instance is not loaded (failed to load, or disabled).
    Unavailable,
    /// Any other permanent failure.
    Permanent,
}

impl ErrorKind {
    /// The seed's class of this kind.
    pub fn class(self) -> ErrorClass {
        use ErrorKind::*;
        match self {
            Auth => ErrorClass::Auth,
            Transient | Timeout | RateLimited | Integrity => ErrorClass::Transient,
            NotFound | AlreadyExists | InvalidInput | InvalidConfig | Unsupported | RangeNotSatisfiable
            | QuotaExceeded | Locked | Unavailable | Permanent => ErrorClass::Permanent,
        }
    }

    /// Short human name, used in `Display`.
    pub fn as_str(self) -> &'static str {
        use ErrorKind::*;
        match self {
            Auth => "authentication failed",
            Transient => "temporary failure",
            Timeout => "timed out",
            RateLimited => "rate limited",
            Integrity => "data integrity check failed",
            NotFound => "not found",
            AlreadyExists => "already exists",
            InvalidInput => "invalid input",
            InvalidConfig => "invalid configuration",
            Unsupported => "not supported",
            RangeNotSatisfiable => "range not satisfiable",
            QuotaExceeded => "quota exceeded",
            Locked => "locked by the provider (legal hold or retention)",
            Unavailable => "instance unavailable",
            Permanent => "failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The contract operations, used for error context, metrics and tracing.
///
/// `#[non_exhaustive]`: the contract grows optional methods (`copy`,
/// `set_legal_hold` came later), each with its operation; iterate
/// [`Operation::ALL`] instead of listing them.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// The registry's factory building the module.
    Construct,
    /// `StorageModule::validate`: config and credentials checked against the service.
    Validate,
    /// `StorageModule::refresh_credentials`.
    RefreshCredentials,
    /// `StorageModule::write`.
    Write,
    /// `StorageModule::read`.
    Read,
    /// `StorageModule::delete`.
    Delete,
    /// `StorageModule::list`.
    List,
    /// `StorageModule::stat`.
    Stat,
    /// `StorageModule::health_check`.
    HealthCheck,
    /// `StorageModule::presign_read`.
    Presign,
    /// `StorageModule::set_legal_hold`.
    SetLegalHold,
    /// `StorageModule::stale_uploads`.
    StaleUploads,
    /// `StorageModule::shutdown`.
    Shutdown,
    /// `StorageModule::copy`.
    Copy,
}

impl Operation {
    /// All operations, in a stable order (for metrics tables).
    pub const ALL: [Operation; 14] = [
        Operation::Construct,
        Operation::Validate,
        Operation::RefreshCredentials,
        Operation::Write,
        Operation::Read,
        Operation::Delete,
        Operation::List,
        Operation::Stat,
        Operation::HealthCheck,
        Operation::Presign,
        Operation::SetLegalHold,
        Operation::StaleUploads,
        Operation::Shutdown,
        Operation::Copy,
    ];

    /// The snake_case name used in metrics labels, logs and JSON.
    pub fn as_str(self) -> &'static str {
        use Operation::*;
        match self {
            Construct => "construct",
            Validate => "validate",
            RefreshCredentials => "refresh_credentials",
            Write => "write",
            Read => "read",
            Delete => "delete",
            List => "list",
            Stat => "stat",
            HealthCheck => "health_check",
            Presign => "presign",
            SetLegalHold => "set_legal_hold",
            StaleUploads => "stale_uploads",
            Shutdown => "shutdown",
            Copy => "copy",
        }
    }

    /// Whether repeating the operation can never do harm, so the retry layer
    /// may repeat it. Writes are retried only when their body can be replayed
    /// (see `ByteStream::try_clone`), and always get a fresh object id. A
    /// copy is not repeated: a lost answer would leave a second copy.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Operation::Write | Operation::Shutdown | Operation::Construct | Operation::Copy)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The one error type of CSAL.
///
/// Build it with the kind constructors (`StorageError::not_found(..)`), add
/// context with the `with_*` methods. The router fills in instance, provider
/// and operation for you.
pub struct StorageError {
    kind: ErrorKind,
    message: Cow<'static, str>,
    provider: Option<Cow<'static, str>>,
    instance: Option<String>,
    operation: Option<Operation>,
    retry_after: Option<Duration>,
    answer_lost: bool,
    source: Option<BoxError>,
}

impl StorageError {
    /// A new error of `kind` with a one-line message (no secrets, please).
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        StorageError {
            kind,
            message: message.into(),
            provider: None,
            instance: None,
            operation: None,
            retry_after: None,
            answer_lost: false,
            source: None,
        }
    }

    /// An [`ErrorKind::Auth`] error saying `msg` (one line, no secret).
    pub fn auth(msg: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Auth, msg)
    }
    /// An [`ErrorKind::Transient`] error saying `msg` (one line, no secret).
    pub fn transient(msg: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Transient, msg)
    }
    /// An [`ErrorKind::Timeout`] error saying `msg` (one line, no secret).
    pub fn timeout(msg: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Timeout, msg)
    }
    /// An [`ErrorKind::Permanent`] error saying `msg` (one line, no secret).
    pub fn permanent(msg: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Permanent, msg)
    }
    /// An [`ErrorKind::NotFound`] error saying `msg` (one line, no secret).
    pub fn not_found(msg: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::NotFound, msg)
    }
    /// An [`ErrorKind::AlreadyExists`] error saying `msg` (one line, no secret).
    pub fn already_exists(msg: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::AlreadyExists, msg)
    }
    /// An [`ErrorKind::InvalidInput`] error saying `msg` (one line, no secret).
    pub fn invalid_input(msg: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidInput, msg)
    }
    /// An [`ErrorKind::InvalidConfig`] error saying `msg` (one line, no secret).
    pub fn invalid_config(msg: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidConfig, msg)
    }
    /// An [`ErrorKind::Unsupported`] error saying `msg` (one line, no secret).
    pub fn unsupported(msg: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unsupported, msg)
    }
    /// An [`ErrorKind::Integrity`] error saying `msg` (one line, no secret).
    pub fn integrity(msg: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Integrity, msg)
    }

    /// `Integrity`: the bytes of `what` read back with CRC32C `got`, but `want` was stored.
    pub fn crc32c_mismatch(what: &str, got: u32, want: u32) -> Self {
        Self::integrity(format!("{what} read back with CRC32C {got:08x}, but {want:08x} was stored"))
    }

    /// Attach the underlying error (kept for `source()`, never shown in `Display`).
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }
    /// How long the provider asked us to wait before trying again (`Retry-After`).
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }
    /// Mark a request that may have reached the server although no answer
    /// was read (the connection dropped, the answer timed out or came cut
    /// off): a write that failed so may have stored its object.
    pub fn with_answer_lost(mut self, lost: bool) -> Self {
        self.answer_lost = lost;
        self
    }
    /// The provider_type the error came from.
    pub fn with_provider(mut self, provider: impl Into<Cow<'static, str>>) -> Self {
        self.provider = Some(provider.into());
        self
    }
    /// The instance name the error came from.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }
    /// The operation that failed.
    pub fn with_operation(mut self, op: Operation) -> Self {
        self.operation = Some(op);
        self
    }
    /// Fill context fields that are still empty (the router does this).
    pub fn with_context_if_missing(mut self, provider: &str, instance: &str, op: Operation) -> Self {
        if self.provider.is_none() {
            self.provider = Some(Cow::Owned(provider.to_owned()));
        }
        if self.instance.is_none() {
            self.instance = Some(instance.to_owned());
        }
        if self.operation.is_none() {
            self.operation = Some(op);
        }
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// What to do about it: the kind's [`ErrorClass`].
    pub fn class(&self) -> ErrorClass {
        self.kind.class()
    }
    /// The message, without the context `Display` adds.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// See [`StorageError::with_provider`].
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }
    /// See [`StorageError::with_instance`].
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }
    /// See [`StorageError::with_operation`].
    pub fn operation(&self) -> Option<Operation> {
        self.operation
    }
    /// How long the provider asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
    /// See [`StorageError::with_answer_lost`].
    pub fn answer_lost(&self) -> bool {
        self.answer_lost
    }
    /// Whether trying again later may succeed ([`ErrorClass::Transient`]).
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }
    /// Whether the kind is [`ErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// Replace every occurrence of the given secret values in the message and
    /// in the source chain's text. Used by the router with the instance's
    /// configured secrets, so a provider that echoes a URL with a token in it
    /// cannot leak it through us.
    pub fn redact(mut self, secrets: &[String]) -> Self {
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).filter(|s| s.len() >= 3).collect();
        if secrets.is_empty() {
            return self;
        }
        if let Some(scrubbed) = scrub(&self.message, &secrets) {
            self.message = Cow::Owned(scrubbed);
        }
        if let Some(src) = &self.source {
            let text = source_chain_text(src.as_ref());
            if let Some(scrubbed) = scrub(&text, &secrets) {
                self.source = Some(Box::new(ScrubbedSource(scrubbed)));
            }
        }
        self
    }
}

fn scrub(text: &str, secrets: &[&str]) -> Option<String> {
    if !secrets.iter().any(|s| text.contains(s)) {
        return None;
    }
    let mut out = text.to_owned();
    for s in secrets {
        out = out.replace(s, MASK);
    }
    Some(out)
}

fn source_chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cur = e.source();
    }
    text
}

/// A source error whose text had a secret scrubbed out of it.
#[derive(Debug)]
struct ScrubbedSource(String);
impl fmt::Display for ScrubbedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ScrubbedSource {}

impl fmt::Display for StorageError {
    /// `write on instance 'cam-archive' (s3) failed: not found: no object 'x'`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(op) = self.operation {
            write!(f, "{op}")?;
        } else {
            f.write_str("storage operation")?;
        }
        if let Some(instance) = &self.instance {
            write!(f, " on instance '{instance}'")?;
        }
        if let Some(provider) = &self.provider {
            write!(f, " ({provider})")?;
        }
        write!(f, " failed: {}", self.kind)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(after) = self.retry_after {
            write!(f, " (retry after {} ms)", after.as_millis())?;
        }
        Ok(())
    }
}

impl fmt::Debug for StorageError {
    /// Like `Display` plus the source chain as text: never an SDK's raw
    /// `Debug`, which can contain request headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("StorageError");
        d.field("kind", &self.kind)
            .field("message", &self.message)
            .field("provider", &self.provider)
            .field("instance", &self.instance)
            .field("operation", &self.operation)
            .field("retry_after", &self.retry_after)
            .field("answer_lost", &self.answer_lost);
        if let Some(src) = &self.source {
            d.field("source", &source_chain_text(src.as_ref()));
        }
        d.finish()
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for StorageError {
    /// Local I/O errors; providers with richer knowledge map their own.
    fn from(err: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::PermissionDenied => ErrorKind::Auth,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            Io::InvalidInput | Io::InvalidData => ErrorKind::InvalidInput,
            Io::TimedOut => ErrorKind::Timeout,
            Io::StorageFull | Io::QuotaExceeded | Io::FileTooLarge => ErrorKind::QuotaExceeded,
            Io::Interrupted
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::ConnectionRefused
            | Io::BrokenPipe
            | Io::UnexpectedEof
            | Io::WouldBlock
            | Io::ResourceBusy
            | Io::NotConnected => ErrorKind::Transient,
            Io::Unsupported => ErrorKind::Unsupported,
            _ => ErrorKind::Permanent,
        };
        let message = err.kind().to_string();
        StorageError::new(kind, message).with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_context() {
        let e = StorageError::not_found("no object 'a/b'").with_context_if_missing("s3", "cams", Operation::Read);
        assert_eq!(e.to_string(), "read on instance 'cams' (s3) failed: not found: no object 'a/b'");
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn redact_scrubs_message_and_source() {
        let src = std::io::Error::other("GET https://x/?sig=SuperSecret123 failed");
        let e = StorageError::transient("url https://x/?sig=SuperSecret123")
            .with_source(src)
            .redact(&["SuperSecret123".to_owned()]);
        assert!(!e.to_string().contains("SuperSecret123"));
        assert!(!format!("{e:?}").contains("SuperSecret123"));
        assert!(format!("{e:?}").contains(MASK));
    }

    #[test]
    fn classes_follow_the_seed() {
        assert_eq!(ErrorKind::RateLimited.class(), ErrorClass::Transient);
        assert_eq!(ErrorKind::NotFound.class(), ErrorClass::Permanent);
        assert_eq!(ErrorKind::Auth.class(), ErrorClass::Auth);
    }
}
