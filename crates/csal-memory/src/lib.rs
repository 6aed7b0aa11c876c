//! CSAL `memory` provider: objects held in process memory.

mod config;
mod module;

pub use config::MemoryConfig;
pub use module::MemoryModule;

csal_core::register_provider!(MemoryConfig, module::build);
