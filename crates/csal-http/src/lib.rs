//! # csal-http
//!
//! The HTTP plumbing of CSAL's HTTP providers (GCS, Azure Blob, WebDAV,
//! Swift, Dropbox, OneDrive, Google Drive, Box, pCloud, MEGA), written once:
//!
//! - [`HttpOptions`]: the one way a provider builds its `reqwest::Client`
//!   (timeouts, TLS, redirects, proxy);
//! - [`retry_after`], [`StatusTable`], [`transport_error`] and
//!   [`ErrorAnswer`]: how an HTTP failure becomes a classified
//!   [`StorageError`](csal_core::StorageError), reading at most
//!   [`ERROR_BODY_LIMIT`] bytes of an error body;
//! - [`ranged_body`] / [`ranged_stream`]: the bytes a ranged GET asked for,
//!   from a server that may ignore `Range`, with `Content-Range` checked;
//! - [`read_json`] / [`read_answer`]: a JSON (or listing) answer read with a size cap;
//! - [`part_body`]: a request body of a multipart upload's part, its chunks uncopied;
//! - [`FolderWalk`]: the continuation token of a listing that walks a folder
//!   tree one page at a time (file-sync services list one folder per call);
//! - [`Quota`]: a service's storage quota turned into health details
//!   (free bytes for the capacity forecast, `degraded` when nearly full).
//!
//! What stays in a provider crate is what is that service's own: its URLs,
//! its auth, its error codes (as [`StatusTable`] overrides or a classifier
//! over [`ErrorAnswer`]), its upload protocol.
#![warn(missing_docs)]

mod body;
mod client;
mod error;
mod quota;
mod ranged;
mod walk;

pub use body::{ANSWER_BODY_LIMIT, part_body, read_answer, read_json};
pub use client::HttpOptions;
pub use error::{ERROR_BODY_LIMIT, ErrorAnswer, StatusTable, one_line, retry_after, transport_error};
pub use quota::{QUOTA_ERROR, QUOTA_TOTAL_BYTES, QUOTA_USED_BYTES, Quota, with_quota};
pub use ranged::{ContentRange, follow_download, ranged_body, ranged_stream};
#[cfg(feature = "fuzzing")]
pub use walk::fuzz_continuation_token;
pub use walk::{FolderWalk, join_path, may_contain};

/// reqwest, as the providers use it (one version for the workspace).
pub use reqwest;
