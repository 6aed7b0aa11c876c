use std::path::PathBuf;

use csal_core::{Result, StorageError};

/// Config of a `local_fs` instance.
#[csal_core::config(
    provider = "local_fs",
    name = "Local filesystem",
    category = local,
    description = "Files under a directory on this machine (local disk, NAS mount)."
)]
#[derive(Clone)]
pub struct LocalFsConfig {
    /// Directory that holds the objects, e.g. /var/lib/csal.
    #[field(label = "Root directory", path)]
    pub root: PathBuf,
    /// Create the root directory (and its parents) when it is missing.
    #[field(label = "Create root if missing", default = true)]
    pub create_root: bool,
    /// Flush data and directory entries to disk before a write reports success.
    #[field(label = "fsync before success", default = true)]
    pub fsync: bool,
    /// Health check reports degraded below this much free space.
    #[field(label = "Minimum free space (MiB)", default = 1024)]
    pub min_free_mb: u64,
    /// Octal permissions of new files (exactly these; the umask does not apply).
    #[field(label = "File permissions", default = "0640")]
    pub file_mode: String,
    /// Octal permissions of new folders (exactly these; the umask does not apply).
    #[field(label = "Folder permissions", default = "0750")]
    pub dir_mode: String,
}

/// Permissions given to what a write creates (exactly these: the process
/// umask does not narrow them further).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Modes {
    pub file: u32,
    pub dir: u32,
}

impl LocalFsConfig {
    pub(crate) fn modes(&self) -> Result<Modes> {
        Ok(Modes {
            file: parse_mode("file_mode", &self.file_mode, 0o600)?,
            dir: parse_mode("dir_mode", &self.dir_mode, 0o700)?,
        })
    }

    /// `min_free_mb` in bytes (saturating: a huge setting means "always degraded").
    pub(crate) fn min_free_bytes(&self) -> u64 {
        self.min_free_mb.saturating_mul(1024 * 1024)
    }
}

/// Octal permission bits (`0640`, `640` or `0o640`) that grant the owner at least `owner_needs`.
fn parse_mode(field: &str, text: &str, owner_needs: u32) -> Result<u32> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    let mode = u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o777).ok_or_else(|| {
        StorageError::invalid_config(format!("field '{field}': {text:?} is not an octal mode like 0640"))
    })?;
    if mode & owner_needs != owner_needs {
        return Err(StorageError::invalid_config(format!(
            "field '{field}': {text:?} must give the owner at least {owner_needs:o} (CSAL itself needs that access)"
        )));
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<LocalFsConfig>();
    }

    #[test]
    fn modes_are_octal_and_leave_the_owner_access() {
        assert_eq!(parse_mode("file_mode", "0640", 0o600).unwrap(), 0o640);
        assert_eq!(parse_mode("file_mode", "600", 0o600).unwrap(), 0o600);
        assert_eq!(parse_mode("dir_mode", "0o755", 0o700).unwrap(), 0o755);
        for bad in ["", "0999", "1777", "rw-r-----", "0440", "-1"] {
            let e = parse_mode("file_mode", bad, 0o600).unwrap_err();
            assert_eq!(e.kind(), csal_core::ErrorKind::InvalidConfig, "{bad:?}");
            assert!(e.to_string().contains("file_mode"), "{e}");
        }
    }

    #[test]
    fn a_huge_min_free_mb_saturates() {
        let config: LocalFsConfig =
            serde_json::from_value(serde_json::json!({ "root": "/x", "min_free_mb": u64::MAX })).unwrap();
        assert_eq!(config.min_free_bytes(), u64::MAX);
    }
}
