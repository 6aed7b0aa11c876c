//! The one declaration of a `{{name}}` instance's config: the struct the
//! module parses and the field spec the CLI and the admin form show.

use std::path::PathBuf;

/// Config of a `{{name}}` instance.
#[csal_core::config(
    provider = "{{name}}",
    name = "{{title}}",
    category = local,
    description = "Objects as files under a folder (the template of cargo xtask new-provider)."
)]
#[derive(Clone)]
pub struct {{Type}}Config {
    /// Folder that holds the objects; created when missing.
    #[field(label = "Root folder", path)]
    pub root: PathBuf,
}

#[cfg(test)]
mod tests {
    #[test]
    fn spec_agrees_with_struct() {
        csal_core::spec::assert_spec_agrees::<super::{{Type}}Config>();
    }
}
