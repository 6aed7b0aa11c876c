use csal_core::ConfigField;

/// Config of a `memory` instance.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Refuse writes once this many bytes are stored (`QuotaExceeded`).
    pub max_bytes: Option<u64>,
}

pub(crate) const FIELDS: &[ConfigField] = &[ConfigField::number("max_bytes", "Capacity (bytes)")
    .help("Writes fail with QuotaExceeded once this many bytes are stored. Empty: unlimited.")];
