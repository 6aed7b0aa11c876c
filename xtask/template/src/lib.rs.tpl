//! CSAL `{{name}}` provider (from `cargo xtask new-provider`).
#![warn(missing_docs)]
// The provider's page (docs/providers/, linked into docs/ so that
// `cargo package` ships it): what docs.rs shows below the summary above.
#![doc = include_str!("../docs/{{name}}.md")]

mod config;
mod module;

pub use config::{{Type}}Config;
pub use module::{{Type}}Module;

csal_core::register_provider!({{Type}}Config, module::build);
