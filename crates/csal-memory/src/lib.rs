//! CSAL `memory` provider: objects held in process memory.

mod config;
mod module;

pub use config::MemoryConfig;
pub use module::MemoryModule;

csal_core::register_provider!(csal_core::ProviderRegistration {
    provider_type: "memory",
    display_name: "In-memory (tests)",
    category: csal_core::ProviderCategory::Local,
    crate_name: env!("CARGO_PKG_NAME"),
    description: "Objects kept in process memory; lost on restart. For tests and examples.",
    fields: config::FIELDS,
    factory: module::build,
});
