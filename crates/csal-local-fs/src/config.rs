use std::path::PathBuf;

use csal_core::{ConfigField, Result, StorageError};

/// Config of a `local_fs` instance.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalFsConfig {
    /// Directory holding the objects.
    pub root: PathBuf,
    /// Create `root` (and parents) when missing. Default true.
    #[serde(default = "yes")]
    pub create_root: bool,
    /// fsync files and directories before a write reports success. Default true.
    #[serde(default = "yes")]
    pub fsync: bool,
    /// Health is `degraded` below this much free space (MiB). Default 1024.
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
    /// Permissions of new files, octal text. Default "0640".
    #[serde(default = "default_file_mode")]
    pub file_mode: String,
    /// Permissions of new folders, octal text. Default "0750".
    #[serde(default = "default_dir_mode")]
    pub dir_mode: String,
}

fn yes() -> bool {
    true
}
fn default_min_free_mb() -> u64 {
    1024
}
fn default_file_mode() -> String {
    "0640".into()
}
fn default_dir_mode() -> String {
    "0750".into()
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

pub(crate) const FIELDS: &[ConfigField] = &[
    ConfigField::path("root", "Root directory")
        .required()
        .help("Directory that holds the objects, e.g. /var/lib/csal."),
    ConfigField::bool("create_root", "Create root if missing").default("true"),
    ConfigField::bool("fsync", "fsync before success")
        .default("true")
        .help("Flush data and directory entries to disk before a write reports success."),
    ConfigField::number("min_free_mb", "Minimum free space (MiB)")
        .default("1024")
        .help("Health check reports degraded below this much free space."),
    ConfigField::text("file_mode", "File permissions")
        .default("\"0640\"")
        .help("Octal permissions of new files (exactly these; the umask does not apply)."),
    ConfigField::text("dir_mode", "Folder permissions")
        .default("\"0750\"")
        .help("Octal permissions of new folders (exactly these; the umask does not apply)."),
];

#[cfg(test)]
mod tests {
    use super::*;

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
