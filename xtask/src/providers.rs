//! What is derived from the list of provider crates, so that adding a
//! provider touches its own crate and one workspace line:
//!
//! - the provider crates: workspace members with `[package.metadata.csal]`
//!   (its `status` is the crate's README line), read with `cargo metadata`;
//! - the `csal-providers` facade: one feature per provider crate (its
//!   generated part of `Cargo.toml` and `src/lib.rs`);
//! - the provider tables of README.md and docs/ARCHITECTURE.md, with the
//!   provider types each crate registers, read from the registry itself
//!   (`csal --json providers`), never repeated by hand;
//! - [`Registry::crate_of`]: which crate serves a provider type (xtask's
//!   emulators say which crates they serve; `--provider r2` finds csal-s3
//!   through the registry).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, workspace_root};

/// One provider crate of the workspace.
#[derive(Debug, Clone)]
pub struct ProviderCrate {
    /// `csal-azure-blob`
    pub name: String,
    pub description: String,
    pub status: String,
    /// Its dependencies, for the ARCHITECTURE table.
    pub depends: Vec<String>,
}

impl ProviderCrate {
    /// The facade feature: the crate name without `csal-` (`azure-blob`).
    pub fn feature(&self) -> &str {
        self.name.strip_prefix("csal-").unwrap_or(&self.name)
    }

    /// The Rust name of the crate (`csal_azure_blob`).
    pub fn ident(&self) -> String {
        self.name.replace('-', "_")
    }
}

/// Plumbing every crate uses; the ARCHITECTURE table shows the rest.
const PLUMBING: &[&str] = &[
    "async-trait",
    "base64",
    "bytes",
    "chrono",
    "crc-fast",
    "crc32c",
    "fastrand",
    "futures",
    "hex",
    "httpdate",
    "humantime",
    "inventory",
    "md-5",
    "percent-encoding",
    "secrecy",
    "serde",
    "serde_json",
    "tempfile",
    "thiserror",
    "tokio",
    "tokio-util",
    "tracing",
    "ulid",
    "url",
];

/// The provider crates of the workspace at `root`, sorted by name.
pub fn provider_crates(root: &Path) -> Result<Vec<ProviderCrate>> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut crates = Vec::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        let Some(status) = p["metadata"]["csal"]["status"].as_str() else { continue };
        let mut depends: Vec<String> = p["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str())
            .filter(|n| !PLUMBING.contains(n))
            .map(str::to_owned)
            .collect();
        depends.sort();
        crates.push(ProviderCrate {
            name: p["name"].as_str().unwrap_or_default().to_owned(),
            description: p["description"].as_str().unwrap_or_default().to_owned(),
            status: status.to_owned(),
            depends,
        });
    }
    crates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(crates)
}

/// Provider types by crate, as the providers registered themselves.
pub struct Registry {
    types: BTreeMap<String, Vec<String>>,
}

impl Registry {
    /// Ask the `csal` binary (which links every provider crate through the
    /// facade) for the registered providers.
    pub fn load() -> Result<Registry> {
        let out = cargo()
            .args(["run", "--quiet", "-p", "csal-cli", "--", "--json", "providers"])
            .output()
            .context("running csal providers")?;
        if !out.status.success() {
            bail!("`csal --json providers` failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Registry::from_json(&out.stdout)
    }

    pub fn from_json(text: &[u8]) -> Result<Registry> {
        let list: serde_json::Value = serde_json::from_slice(text).context("reading `csal --json providers`")?;
        let mut types: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in list.as_array().into_iter().flatten() {
            let (Some(ty), Some(krate)) = (p["provider_type"].as_str(), p["crate"].as_str()) else { continue };
            types.entry(krate.to_owned()).or_default().push(ty.to_owned());
        }
        Ok(Registry { types })
    }

    /// The provider types a crate registers, its own name first
    /// (`csal-s3`: `s3`, then its presets).
    pub fn types_of(&self, krate: &str) -> Vec<String> {
        let mut types = self.types.get(krate).cloned().unwrap_or_default();
        let own = krate.strip_prefix("csal-").unwrap_or(krate).replace('-', "_");
        types.sort_by_key(|t| (*t != own, t.clone()));
        types
    }

    /// The crate that registers `provider_type`.
    pub fn crate_of(&self, provider_type: &str) -> Option<&str> {
        self.types.iter().find(|(_, types)| types.iter().any(|t| t == provider_type)).map(|(c, _)| c.as_str())
    }
}

const BEGIN: &str = "BEGIN generated by `cargo xtask docs`";
const END: &str = "END generated";

/// `text` with the part between the markers (comment lines holding
/// [`BEGIN`] and [`END`]) replaced by `body`.
fn replace_between(text: &str, body: &str, what: &str) -> Result<String> {
    let start = text.find(BEGIN).with_context(|| format!("{what}: no `{BEGIN}` marker"))?;
    let start = text[start..].find('\n').map(|i| start + i + 1).context("marker line")?;
    let end = text[start..].find(END).map(|i| start + i).with_context(|| format!("{what}: no `{END}` marker"))?;
    let end = text[..end].rfind('\n').map_or(end, |i| i + 1);
    Ok(format!("{}{}{}", &text[..start], body, &text[end..]))
}

/// The facade's generated dependency and feature lines.
pub fn facade_manifest_part(crates: &[ProviderCrate]) -> String {
    let mut out = String::from("[dependencies]\n");
    for c in crates {
        out.push_str(&format!("{} = {{ workspace = true, optional = true }}\n", c.name));
    }
    out.push_str(
        "\n[features]\ndefault = []\n# Every provider crate of the workspace (what the `csal` binary links).\nall = [",
    );
    out.push_str(&crates.iter().map(|c| format!("\"{}\"", c.feature())).collect::<Vec<_>>().join(", "));
    out.push_str("]\n");
    for c in crates {
        out.push_str(&format!("{} = [\"dep:{}\"]\n", c.feature(), c.name));
    }
    out
}

/// The facade's generated re-exports.
pub fn facade_lib_part(crates: &[ProviderCrate]) -> String {
    crates.iter().map(|c| format!("#[cfg(feature = \"{}\")]\npub use {};\n", c.feature(), c.ident())).collect()
}

fn readme_part(crates: &[ProviderCrate], registry: &Registry) -> String {
    let mut out = String::from("| crate | provider_type | status |\n|---|---|---|\n");
    for c in crates {
        let types = registry.types_of(&c.name).iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
        out.push_str(&format!("| `{}` | {types} | {} |\n", c.name, c.status.replace('|', "\\|")));
    }
    out
}

fn architecture_part(crates: &[ProviderCrate], registry: &Registry) -> String {
    let mut out = String::from("| crate | provider types | what it is | depends on |\n|---|---|---|---|\n");
    for c in crates {
        let types = registry.types_of(&c.name).iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
        let description = c.description.strip_prefix("CSAL ").unwrap_or(&c.description);
        out.push_str(&format!("| `{}` | {types} | {description} | {} |\n", c.name, c.depends.join(", ")));
    }
    out
}

/// The files `cargo xtask docs` writes, with their new contents.
pub fn generated_files(root: &Path, registry: Option<&Registry>) -> Result<Vec<(std::path::PathBuf, String)>> {
    let crates = provider_crates(root)?;
    let mut files = Vec::new();
    let facade = root.join("crates/csal-providers");
    for (path, body) in [
        (facade.join("Cargo.toml"), facade_manifest_part(&crates)),
        (facade.join("src/lib.rs"), facade_lib_part(&crates)),
    ] {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        files.push((path.clone(), replace_between(&text, &body, &path.display().to_string())?));
    }
    if let Some(registry) = registry {
        for (path, body) in [
            (root.join("README.md"), readme_part(&crates, registry)),
            (root.join("docs/ARCHITECTURE.md"), architecture_part(&crates, registry)),
        ] {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            files.push((path.clone(), replace_between(&text, &body, &path.display().to_string())?));
        }
    }
    Ok(files)
}

/// `cargo xtask docs [--check]`.
pub fn docs(check: bool) -> Result<()> {
    let root = workspace_root();
    // The facade first: the registry is read from the binary that links it.
    let mut stale = write_or_check(&generated_files(&root, None)?, check)?;
    let registry = Registry::load()?;
    stale.extend(write_or_check(&generated_files(&root, Some(&registry))?, check)?);
    let deps = root.join("docs/dependencies.md");
    let text = std::fs::read_to_string(&deps).with_context(|| format!("reading {}", deps.display()))?;
    let measured = replace_between(&text, &crate::deps::counts_table()?, "docs/dependencies.md")?;
    stale.extend(write_or_check(&[(deps, measured)], check)?);
    if check && !stale.is_empty() {
        bail!("out of date (run `cargo xtask docs`): {}", stale.join(", "));
    }
    Ok(())
}

fn write_or_check(files: &[(std::path::PathBuf, String)], check: bool) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    for (path, text) in files {
        if std::fs::read_to_string(path)? != *text {
            if check {
                stale.push(path.display().to_string());
            } else {
                std::fs::write(path, text)?;
                eprintln!("xtask: wrote {}", path.display());
            }
        }
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(name: &str) -> ProviderCrate {
        ProviderCrate {
            name: name.into(),
            description: "CSAL thing".into(),
            status: "done".into(),
            depends: vec!["core".into()],
        }
    }

    #[test]
    fn markers_keep_what_is_around_them() {
        let text = "head\n# BEGIN generated by `cargo xtask docs`\nold\n# END generated\ntail\n";
        let out = replace_between(text, "new\n", "t").unwrap();
        assert_eq!(out, "head\n# BEGIN generated by `cargo xtask docs`\nnew\n# END generated\ntail\n");
        assert!(replace_between("no markers", "x", "t").is_err());
    }

    #[test]
    fn every_crate_is_a_facade_feature() {
        let crates = [krate("csal-azure-blob"), krate("csal-s3")];
        let manifest = facade_manifest_part(&crates);
        assert!(manifest.contains("csal-azure-blob = { workspace = true, optional = true }"));
        assert!(manifest.contains("all = [\"azure-blob\", \"s3\"]"));
        assert!(manifest.contains("azure-blob = [\"dep:csal-azure-blob\"]"));
        assert!(facade_lib_part(&crates).contains("#[cfg(feature = \"s3\")]\npub use csal_s3;"));
    }

    #[test]
    fn registry_finds_a_preset_crate_and_lists_its_own_type_first() {
        let json = br#"[{"provider_type":"r2","crate":"csal-s3"},{"provider_type":"s3","crate":"csal-s3"},
                        {"provider_type":"gcs","crate":"csal-gcs"}]"#;
        let r = Registry::from_json(json).unwrap();
        assert_eq!(r.crate_of("r2"), Some("csal-s3"));
        assert_eq!(r.types_of("csal-s3"), vec!["s3".to_owned(), "r2".to_owned()]);
        assert_eq!(r.crate_of("nope"), None);
    }
}
