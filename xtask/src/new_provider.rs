//! `cargo xtask new-provider NAME`: a provider crate from the template in
//! `xtask/template` (objects as files in a local folder, so it passes the
//! conformance suite as generated), one line in the workspace's
//! `[workspace.dependencies]`, and the generated parts regenerated
//! (`cargo xtask docs`): nothing else is edited by hand. The test below
//! builds the template in a scratch workspace and runs its conformance test,
//! so docs/writing-a-provider.md stays true.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

const TEMPLATE: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../template/Cargo.toml.tpl")),
    ("README.md", include_str!("../template/README.md.tpl")),
    ("CHANGELOG.md", include_str!("../template/CHANGELOG.md.tpl")),
    ("src/lib.rs", include_str!("../template/src/lib.rs.tpl")),
    ("src/config.rs", include_str!("../template/src/config.rs.tpl")),
    ("src/module.rs", include_str!("../template/src/module.rs.tpl")),
    ("tests/conformance.rs", include_str!("../template/tests/conformance.rs.tpl")),
];

/// `my_store` → `csal-my-store`.
pub fn crate_name(name: &str) -> String {
    format!("csal-{}", name.replace('_', "-"))
}

fn check_name(name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && name.len() <= 32;
    if !ok {
        bail!("'{name}' is not a provider_type: lowercase letters, digits and '_', starting with a letter");
    }
    Ok(())
}

/// The starter page of a new provider (docs/providers/NAME.md).
const PAGE: &str = include_str!("../template/docs/provider.md.tpl");

/// The template's files for provider `name` (paths relative to the crate).
pub fn render(name: &str) -> Vec<(&'static str, String)> {
    render_with(name, TEMPLATE)
}

/// `files` with the placeholders filled for provider `name`.
fn render_with(name: &str, files: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let type_name: String = name
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    let title = {
        let words = name.replace('_', " ");
        let mut c = words.chars();
        c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
    };
    let krate = crate_name(name);
    files
        .iter()
        .map(|(path, text)| {
            let text = text
                .replace("{{crate}}", &krate)
                .replace("{{ident}}", &krate.replace('-', "_"))
                .replace("{{Type}}", &type_name)
                .replace("{{title}}", &title)
                .replace("{{name}}", name);
            (*path, text)
        })
        .collect()
}

/// The workspace manifest with the new crate's one line added to
/// `[workspace.dependencies]`, after the last path dependency of a crate.
pub fn add_workspace_line(manifest: &str, name: &str) -> Result<String> {
    let krate = crate_name(name);
    if manifest.lines().any(|l| l.starts_with(&format!("{krate} ="))) {
        bail!("{krate} is already in the workspace");
    }
    let line = format!("{krate} = {{ path = \"crates/{krate}\", version = \"0.1\" }}\n");
    let anchor = manifest
        .match_indices("crates/csal-")
        .last()
        .map(|(i, _)| i)
        .context("no crate path dependency in [workspace.dependencies]")?;
    let end = manifest[anchor..].find('\n').map_or(manifest.len(), |i| anchor + i + 1);
    Ok(format!("{}{line}{}", &manifest[..end], &manifest[end..]))
}

/// Write the crate under `root/crates`, add its workspace line.
pub fn write_crate(root: &Path, name: &str) -> Result<PathBuf> {
    check_name(name)?;
    let dir = root.join("crates").join(crate_name(name));
    if dir.exists() {
        bail!("{} exists already", dir.display());
    }
    for (path, text) in render(name) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in the crate"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    crate::release::link_licence_files(&dir)?;
    link_provider_page(root, &dir, name)?;
    let manifest = root.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)?;
    std::fs::write(&manifest, add_workspace_line(&text, name)?)?;
    Ok(dir)
}

/// The provider's page lives in docs/providers/ with the others (a starter
/// page is written unless one exists); the crate links it as
/// `docs/NAME.md`, which its lib.rs includes, so docs.rs shows it and
/// `cargo package` ships it.
fn link_provider_page(root: &Path, dir: &Path, name: &str) -> Result<()> {
    let page = root.join("docs/providers").join(format!("{name}.md"));
    if !page.exists() {
        let (_, text) = render_with(name, &[("docs/provider.md", PAGE)]).remove(0);
        std::fs::create_dir_all(page.parent().expect("docs/providers"))?;
        std::fs::write(&page, text).with_context(|| format!("writing {}", page.display()))?;
    }
    std::fs::create_dir_all(dir.join("docs"))?;
    std::os::unix::fs::symlink(format!("../../../docs/providers/{name}.md"), dir.join(format!("docs/{name}.md")))?;
    Ok(())
}

/// `cargo xtask new-provider NAME`.
pub fn create(root: &Path, name: &str) -> Result<()> {
    let dir = write_crate(root, name)?;
    eprintln!("xtask: created {} and its line in Cargo.toml", dir.display());
    crate::providers::docs(false)?;
    eprintln!(
        "xtask: next: `cargo nextest run -p {}` (conformance on a local folder), then replace src/module.rs \
         with the service's calls (docs/writing-a-provider.md)",
        crate_name(name)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_gets_exactly_one_line() {
        let manifest = std::fs::read_to_string(crate::workspace_root().join("Cargo.toml")).unwrap();
        let after = add_workspace_line(&manifest, "my_store").unwrap();
        let (old, new): (Vec<&str>, Vec<&str>) = (manifest.lines().collect(), after.lines().collect());
        assert_eq!(new.len(), old.len() + 1);
        let added: Vec<&&str> = new.iter().filter(|l| !old.contains(l)).collect();
        assert_eq!(added, [&"csal-my-store = { path = \"crates/csal-my-store\", version = \"0.1\" }"]);
        assert!(add_workspace_line(&after, "my_store").is_err(), "twice is refused");
    }

    #[test]
    fn names_are_provider_types() {
        assert!(check_name("my_store2").is_ok());
        for bad in ["", "My", "a-b", "_x", "x_", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let files = render("my_store");
        let lib = &files.iter().find(|(p, _)| *p == "src/lib.rs").unwrap().1;
        assert!(lib.contains("csal_core::register_provider!(MyStoreConfig, module::build);"), "{lib}");
        assert!(files.iter().all(|(_, t)| !t.contains("{{")), "every placeholder is filled");
        let page = &render_with("my_store", &[("docs/provider.md", PAGE)])[0].1;
        assert!(page.contains("Crate: `csal-my-store`") && !page.contains("{{"), "{page}");
        assert!(lib.contains("include_str!(\"../docs/my_store.md\")"), "{lib}");
    }

    /// What docs/writing-a-provider.md promises: the generated crate builds
    /// and passes the conformance suite on a local folder. Built in a
    /// scratch workspace that uses this workspace's crates and lock file
    /// (and its target folder, so only the template crate is compiled).
    #[test]
    fn the_template_crate_passes_conformance() {
        let root = crate::workspace_root();
        let scratch = tempfile::tempdir().unwrap();
        let name = "template_check";
        let krate = crate_name(name);
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let start = manifest.find("members = [").unwrap();
        let end = start + manifest[start..].find(']').unwrap() + 1;
        let manifest = format!("{}members = [\"crates/{krate}\"]{}", &manifest[..start], &manifest[end..]);
        let manifest = manifest.replace("path = \"crates/", &format!("path = \"{}/crates/", root.display()));
        std::fs::write(scratch.path().join("Cargo.toml"), manifest).unwrap();
        std::fs::copy(root.join("Cargo.lock"), scratch.path().join("Cargo.lock")).unwrap();
        std::fs::create_dir_all(scratch.path().join("crates")).unwrap();
        write_crate(scratch.path(), name).unwrap();
        let target = crate::target_dir();
        let status = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(scratch.path())
            .args(["test", "--offline", "-p", &krate])
            .env("CARGO_TARGET_DIR", target)
            .env_remove("CSAL_CONFORMANCE_PROVIDERS")
            .status()
            .unwrap();
        assert!(status.success(), "the template crate failed its tests");
    }
}
