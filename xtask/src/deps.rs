//! Dependency checks that keep the published crates lean (issue 18 item 4):
//!
//! - one TLS crypto provider: `ring` must not be in the build of any
//!   publishable crate, except as a dependency of a crate listed in
//!   [`RING_ALLOWED_VIA`] (with the reason); rustls runs on aws-lc-rs;
//! - the package counts in docs/dependencies.md are measured: `cargo xtask
//!   docs` rewrites them, `cargo xtask docs --check` (part of `cargo xtask
//!   test`) fails when they no longer match the lock file.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};

use crate::cargo;
use crate::release::{build_closure, metadata};

/// Crates allowed to depend on `ring` directly, and why.
pub const RING_ALLOWED_VIA: &[(&str, &str)] = &[(
    "dropbox-sdk",
    "dropbox-sdk 0.21 (the newest) depends on ring unconditionally for its OAuth PKCE helpers \
     (random bytes, SHA-256); it is not a TLS provider there: its HTTP goes through our reqwest client",
)];

/// The publishable workspace members (`publish` not `false`).
fn publishable() -> Result<Vec<String>> {
    let metadata = metadata()?;
    let members: BTreeSet<&str> =
        metadata["workspace_members"].as_array().into_iter().flatten().filter_map(|m| m.as_str()).collect();
    Ok(metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .filter(|p| !p["publish"].as_array().is_some_and(|r| r.is_empty()))
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect())
}

/// The packages that depend on `ring` directly in `name`'s build (normal
/// and build edges, all features, Linux).
fn ring_dependents(name: &str) -> Result<Vec<String>> {
    let out = cargo()
        .args(["tree", "--locked", "--all-features", "-p", name, "-e", "normal,build", "-i", "ring"])
        .args(["--depth", "1", "--prefix", "none", "-f", "{p}", "--target", "x86_64-unknown-linux-gnu"])
        .output()
        .context("running cargo tree -i ring")?;
    if !out.status.success() {
        bail!("cargo tree -p {name} -i ring failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(parents_of_ring(&String::from_utf8_lossy(&out.stdout)))
}

/// The package names below the first line of `cargo tree -i ring --depth 1` output.
fn parents_of_ring(tree: &str) -> Vec<String> {
    tree.lines().skip(1).filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect()
}

/// `ring` is in no publishable crate's build except through [`RING_ALLOWED_VIA`].
pub fn one_tls_provider() -> Result<()> {
    let mut problems = Vec::new();
    for name in publishable()? {
        if !build_closure(&name)?.lines().any(|l| l.starts_with("ring v")) {
            continue;
        }
        for parent in ring_dependents(&name)? {
            if !RING_ALLOWED_VIA.iter().any(|(allowed, _)| *allowed == parent) {
                problems.push(format!("{name}: ring comes in through {parent}"));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "ring is back in the build (rustls must run on aws-lc-rs only; choose the aws-lc-rs feature of the \
             dependency, e.g. sqlx tls-rustls-aws-lc-rs):\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// What an application depends on, for the counts in docs/dependencies.md.
const APPLICATIONS: &[(&str, &[&str])] = &[
    ("csal-core only", &["csal-core"]),
    ("csal-core + csal-s3", &["csal-core", "csal-s3"]),
    ("csal-core + csal-local-fs", &["csal-core", "csal-local-fs"]),
    ("csal-providers, feature `all` (every provider)", &["csal-providers/all"]),
];

/// Distinct packages (name and version) `cargo tree` lists for the given
/// crates (`crate/feature` turns a feature on), the crates themselves
/// excluded: what an application depending on them compiles besides its own code.
fn count(specs: &[&str], edges: &str) -> Result<usize> {
    let mut cmd = cargo();
    cmd.args(["tree", "--locked", "-e", edges, "--prefix", "none", "-f", "{p}"]);
    cmd.args(["--target", "x86_64-unknown-linux-gnu"]);
    let mut roots = Vec::new();
    for spec in specs {
        let (name, feature) = spec.split_once('/').map_or((*spec, None), |(n, f)| (n, Some(f)));
        cmd.args(["-p", name]);
        if let Some(f) = feature {
            cmd.args(["--features", &format!("{name}/{f}")]);
        }
        roots.push(name);
    }
    let out = cmd.output().context("running cargo tree")?;
    if !out.status.success() {
        bail!("cargo tree {specs:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(distinct_packages(&String::from_utf8_lossy(&out.stdout), &roots))
}

/// Distinct `name vX` lines of `cargo tree --prefix none` output, `roots` left out.
fn distinct_packages(tree: &str, roots: &[&str]) -> usize {
    tree.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?, words.next()?))
        })
        .filter(|(name, _)| !roots.contains(name))
        .collect::<BTreeSet<_>>()
        .len()
}

/// The measured table of docs/dependencies.md.
pub fn counts_table() -> Result<String> {
    let mut out = String::from(
        "| an application using | packages (normal dependencies) | packages compiled (with build dependencies) |\n\
         |---|---|---|\n",
    );
    for (what, specs) in APPLICATIONS {
        out.push_str(&format!("| {what} | {} | {} |\n", count(specs, "normal")?, count(specs, "normal,build")?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_counted_once_and_roots_left_out() {
        let tree = "csal-core v0.1.0 (/w/crates/csal-core)\nbytes v1.0.0\nserde v1.0.1\nbytes v1.0.0\n\
                    csal-s3 v0.1.0 (/w/crates/csal-s3)\nbytes v1.0.0\nserde v1.0.2\n";
        assert_eq!(distinct_packages(tree, &["csal-core", "csal-s3"]), 3);
    }

    #[test]
    fn the_packages_that_bring_ring_in_are_named() {
        let tree = "ring v0.17.14\ndropbox-sdk v0.21.0\nrustls v0.23.46\n";
        assert_eq!(parents_of_ring(tree), ["dropbox-sdk", "rustls"]);
    }

    /// Checked here too, so every nextest run (CI's) fails when ring comes back.
    #[test]
    fn ring_is_only_where_it_is_allowed() {
        one_tls_provider().unwrap();
    }
}
