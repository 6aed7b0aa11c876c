//! Checks that keep the crates publishable: true minimum Rust versions and
//! no unused dependencies (`cargo xtask test` runs both; `cargo xtask msrv
//! --compile` also builds each crate with its declared toolchain).
//!
//! The MSRV check is static so it runs offline in CI: a crate's
//! `rust-version` must be at least the highest `rust-version` declared by
//! anything it depends on (normal and build dependencies, Linux targets,
//! the lock file's versions). Std APIs newer than a crate's MSRV are
//! caught by clippy's `incompatible_msrv`, which reads the same field.
//! Language features (let chains need 1.88) only a real toolchain sees:
//! `--compile` installs each distinct declared version with rustup and
//! runs `cargo check` of the crates that declare it (needs the network).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, run};

/// A `rust-version` as numbers (`1.94.1` → [1, 94, 1]; `1.85` → [1, 85, 0]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RustVersion([u32; 3]);

impl RustVersion {
    pub fn parse(text: &str) -> Option<RustVersion> {
        let mut parts = [0u32; 3];
        let mut count = 0;
        for (slot, piece) in parts.iter_mut().zip(text.trim().split('.')) {
            *slot = piece.parse().ok()?;
            count += 1;
        }
        (count >= 2 && text.split('.').count() <= 3).then_some(RustVersion(parts))
    }
}

impl std::fmt::Display for RustVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [a, b, c] = self.0;
        if c == 0 { write!(f, "{a}.{b}") } else { write!(f, "{a}.{b}.{c}") }
    }
}

/// One workspace crate: what it declares and what its dependencies need.
#[derive(Debug)]
pub struct MsrvRow {
    pub name: String,
    pub declared: Option<RustVersion>,
    pub required: Option<(RustVersion, String)>,
    pub publish: bool,
}

impl MsrvRow {
    fn problem(&self) -> Option<String> {
        match (&self.declared, &self.required) {
            (None, _) if self.publish => Some(format!("{}: no rust-version", self.name)),
            (Some(d), Some((r, by))) if d < r => {
                Some(format!("{}: declares rust-version {d} but {by} needs {r}", self.name))
            }
            _ => None,
        }
    }
}

/// The packages (`name vX.Y.Z`, one per line) one crate builds with all of
/// its own features (a user may turn any on), resolved by `cargo tree -p`
/// for that crate alone: not the workspace-wide unification `cargo
/// metadata` reports, so a crate is not charged for what another member's
/// features pull in.
pub(crate) fn build_closure(name: &str) -> Result<String> {
    let out = cargo()
        .args(["tree", "--locked", "--all-features", "-p", name, "-e", "normal,build", "--prefix", "none", "-f", "{p}"])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .output()
        .context("running cargo tree")?;
    if !out.status.success() {
        bail!("cargo tree -p {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The highest rust-version among `closure`'s packages other than `member`
/// itself, with the package that declares it.
fn required_by(
    member: &str,
    closure: &str,
    versions: &HashMap<(String, String), RustVersion>,
) -> Option<(RustVersion, String)> {
    let mut required: Option<(RustVersion, String)> = None;
    for line in closure.lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else { continue };
        let version = version.trim_start_matches('v');
        if name == member {
            continue;
        }
        if let Some(v) = versions.get(&(name.to_owned(), version.to_owned()))
            && required.as_ref().is_none_or(|(r, _)| v > r)
        {
            required = Some((*v, format!("{name} {version}")));
        }
    }
    required
}

/// The MSRV rows, one per workspace member: `metadata` is `cargo metadata`
/// output (declared versions), `closure` gives a member's build closure.
pub fn msrv_rows(metadata: &serde_json::Value, closure: impl Fn(&str) -> Result<String>) -> Result<Vec<MsrvRow>> {
    let packages = metadata["packages"].as_array().context("metadata: no packages")?;
    let versions: HashMap<(String, String), RustVersion> = packages
        .iter()
        .filter_map(|p| {
            let v = RustVersion::parse(p["rust_version"].as_str()?)?;
            Some(((p["name"].as_str()?.to_owned(), p["version"].as_str()?.to_owned()), v))
        })
        .collect();
    let members: HashSet<&str> = metadata["workspace_members"]
        .as_array()
        .context("metadata: no members")?
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let mut rows = Vec::new();
    for package in packages.iter().filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id))) {
        let name = package["name"].as_str().context("metadata: package name")?;
        rows.push(MsrvRow {
            name: name.to_owned(),
            declared: package["rust_version"].as_str().and_then(RustVersion::parse),
            required: required_by(name, &closure(name)?, &versions),
            // `publish = false` comes out as an empty list of registries.
            publish: !package["publish"].as_array().is_some_and(|r| r.is_empty()),
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

pub(crate) fn metadata() -> Result<serde_json::Value> {
    let out =
        cargo().args(["metadata", "--format-version", "1", "--locked"]).output().context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).context("parsing cargo metadata")
}

/// Every crate declares a rust-version its dependencies allow; with
/// `compile`, each distinct version also builds the crates that declare it.
pub fn msrv(compile: bool) -> Result<()> {
    let rows = msrv_rows(&metadata()?, build_closure)?;
    let problems: Vec<String> = rows.iter().filter_map(MsrvRow::problem).collect();
    for row in &rows {
        let declared = row.declared.map_or("-".to_owned(), |v| v.to_string());
        let required = row.required.as_ref().map_or("-".to_owned(), |(v, by)| format!("{v} ({by})"));
        eprintln!("  {:<20} declares {:<8} dependencies need {}", row.name, declared, required);
    }
    if !problems.is_empty() {
        bail!("rust-version too low:\n  {}", problems.join("\n  "));
    }
    eprintln!("xtask: every crate's rust-version covers its dependencies");
    if compile {
        let mut by_version: BTreeMap<RustVersion, Vec<&str>> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.publish) {
            if let Some(v) = row.declared {
                by_version.entry(v).or_default().push(&row.name);
            }
        }
        for (version, crates) in by_version {
            let toolchain = version.to_string();
            run(
                &format!("install Rust {toolchain}"),
                Command::new("rustup").args(["toolchain", "install", &toolchain, "--profile", "minimal"]),
            )?;
            let mut cmd = Command::new("cargo");
            cmd.current_dir(crate::workspace_root()).arg(format!("+{toolchain}")).args([
                "check",
                "--locked",
                "--lib",
                "--target-dir",
                "target/msrv",
            ]);
            for c in &crates {
                cmd.args(["-p", c]);
            }
            run(&format!("cargo +{toolchain} check of {}", crates.join(", ")), &mut cmd)?;
        }
    }
    Ok(())
}

/// The licence texts every published crate carries (symlinks to the
/// workspace's; `cargo package` stores the files they point at).
pub const LICENCE_FILES: [&str; 2] = ["LICENSE-MIT", "LICENSE-APACHE"];

/// Link the workspace's licence files into a crate folder under `crates/`.
pub fn link_licence_files(crate_dir: &Path) -> Result<()> {
    for file in LICENCE_FILES {
        std::os::unix::fs::symlink(Path::new("../..").join(file), crate_dir.join(file))
            .with_context(|| format!("linking {file} into {}", crate_dir.display()))?;
    }
    Ok(())
}

/// Every publishable crate has the licence files (its package would ship without them).
pub fn licence_files() -> Result<()> {
    let metadata = metadata()?;
    let members: HashSet<&str> =
        metadata["workspace_members"].as_array().into_iter().flatten().filter_map(|m| m.as_str()).collect();
    let mut missing = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let publish = !package["publish"].as_array().is_some_and(|r| r.is_empty());
        if !publish || !package["id"].as_str().is_some_and(|id| members.contains(id)) {
            continue;
        }
        let dir = Path::new(package["manifest_path"].as_str().unwrap_or("")).parent().unwrap_or(Path::new(""));
        for file in LICENCE_FILES {
            if !dir.join(file).is_file() {
                missing.push(format!("{}/{file}", dir.display()));
            }
        }
    }
    if !missing.is_empty() {
        bail!("licence files missing (link them: ln -s ../../LICENSE-MIT ...):\n  {}", missing.join("\n  "));
    }
    Ok(())
}

/// cargo-machete finds dependencies no source file names (installed on
/// first use). Run as `cargo-machete ROOT`, not `cargo machete`: under
/// `cargo xtask` the `CARGO_PKG_*` variables make it take the word
/// `machete` for a folder to scan.
pub fn unused_dependencies() -> Result<()> {
    let have = Command::new("cargo-machete").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    if !have {
        run("install cargo-machete", Command::new("cargo").args(["install", "cargo-machete", "--locked"]))?;
    }
    run("cargo-machete (unused dependencies)", Command::new("cargo-machete").arg(crate::workspace_root()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked here, so every nextest run (CI's) sees a crate without them.
    #[test]
    fn every_publishable_crate_has_the_licence_files() {
        licence_files().unwrap();
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(RustVersion::parse("1.85"), Some(RustVersion([1, 85, 0])));
        assert_eq!(RustVersion::parse("1.94.1").unwrap().to_string(), "1.94.1");
        assert!(RustVersion::parse("1.94.1").unwrap() > RustVersion::parse("1.94").unwrap());
        assert_eq!(RustVersion::parse("1"), None);
        assert_eq!(RustVersion::parse("1.x"), None);
        assert_eq!(RustVersion::parse("1.2.3.4"), None);
    }

    /// The member's dependency needs more than the member declares; the
    /// member's own line does not count.
    #[test]
    fn a_dependency_that_needs_a_newer_rust_is_reported() {
        let metadata = serde_json::json!({
            "workspace_members": ["app-id"],
            "packages": [
                {"id": "app-id", "name": "app", "version": "0.1.0", "rust_version": "1.85", "publish": null},
                {"id": "lib-id", "name": "lib", "version": "1.0.0", "rust_version": "1.80"},
                {"id": "deep-id", "name": "deep", "version": "2.0.0", "rust_version": "1.88"},
                {"id": "old-id", "name": "deep", "version": "1.0.0", "rust_version": "1.95"}
            ]
        });
        let tree = "app v0.1.0 (/src/app)\nlib v1.0.0\ndeep v2.0.0\nlib v1.0.0 (*)\n";
        let rows = msrv_rows(&metadata, |name| {
            assert_eq!(name, "app");
            Ok(tree.to_owned())
        })
        .unwrap();
        assert_eq!(rows.len(), 1);
        let (needed, by) = rows[0].required.clone().unwrap();
        assert_eq!((needed.to_string(), by.as_str()), ("1.88".to_owned(), "deep 2.0.0"));
        assert_eq!(rows[0].problem().unwrap(), "app: declares rust-version 1.85 but deep 2.0.0 needs 1.88");
    }
}
