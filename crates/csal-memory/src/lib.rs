//! CSAL `memory` provider: objects held in process memory.
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/memory.md")]

mod config;
mod module;

pub use config::MemoryConfig;
pub use module::MemoryModule;

csal_core::register_provider!(MemoryConfig, module::build);
