use std::path::PathBuf;

use csal_core::ConfigField;

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
}

fn yes() -> bool {
    true
}
fn default_min_free_mb() -> u64 {
    1024
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
];
