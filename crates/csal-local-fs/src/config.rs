use std::path::PathBuf;

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
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<super::LocalFsConfig>();
    }
}
