//! CSAL `{{name}}` provider (from `cargo xtask new-provider`).

mod config;
mod module;

pub use config::{{Type}}Config;
pub use module::{{Type}}Module;

csal_core::register_provider!({{Type}}Config, module::build);
