/// Config of a `memory` instance.
#[csal_core::config(
    provider = "memory",
    name = "In-memory (tests)",
    category = local,
    description = "Objects kept in process memory; lost on restart. For tests and examples."
)]
#[derive(Clone, Default)]
pub struct MemoryConfig {
    /// Writes fail with QuotaExceeded once this many bytes are stored. Empty: unlimited.
    #[field(label = "Capacity (bytes)")]
    pub max_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<super::MemoryConfig>();
    }
}
