//! The provider × test matrix, read from the JSON reports the conformance
//! suite writes (`csal_conformance::Report`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

#[derive(serde::Deserialize)]
struct Report {
    label: String,
    provider_type: String,
    results: Vec<TestResult>,
}

#[derive(serde::Deserialize)]
struct TestResult {
    name: String,
    outcome: String,
    reason: Option<String>,
}

/// Print the matrix; an error if any test failed or no report exists.
pub fn print(dir: &Path, providers: &[String]) -> Result<()> {
    let mut reports = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path())?;
        let report: Report = serde_json::from_str(&text)?;
        reports.push(report);
    }
    reports.sort_by(|a, b| a.label.cmp(&b.label));
    if reports.is_empty() {
        bail!("no conformance reports in {} (no conformance test ran)", dir.display());
    }
    let mut tests: Vec<String> = Vec::new();
    for r in &reports {
        for t in &r.results {
            if !tests.contains(&t.name) {
                tests.push(t.name.clone());
            }
        }
    }
    let width = reports.iter().map(|r| r.label.len()).max().unwrap_or(8).max(8);
    println!("\nConformance matrix (P = pass, F = fail, s = skipped; columns are tests, numbered below)\n");
    print!("{:<width$} ", "target");
    for i in 0..tests.len() {
        print!("{:>3}", i + 1);
    }
    println!("  pass fail skip");
    let mut failures = Vec::new();
    let mut skip_reasons: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &reports {
        print!("{:<width$} ", r.label);
        let (mut p, mut f, mut s) = (0, 0, 0);
        for t in &tests {
            let cell = match r.results.iter().find(|x| &x.name == t) {
                Some(x) if x.outcome == "pass" => {
                    p += 1;
                    "P"
                }
                Some(x) if x.outcome == "fail" => {
                    f += 1;
                    failures.push(format!("{} / {}: {}", r.label, t, x.reason.clone().unwrap_or_default()));
                    "F"
                }
                Some(x) => {
                    s += 1;
                    skip_reasons
                        .entry(format!("{}: {}", r.label, x.reason.clone().unwrap_or_default()))
                        .or_default()
                        .push(t.clone());
                    "s"
                }
                None => "-",
            };
            print!("{cell:>3}");
        }
        println!("  {p:>4} {f:>4} {s:>4}   ({})", r.provider_type);
    }
    println!("\nTests:");
    for (i, t) in tests.iter().enumerate() {
        println!("  {:>2}. {t}", i + 1);
    }
    if !skip_reasons.is_empty() {
        println!("\nSkipped:");
        for (why, tests) in &skip_reasons {
            println!("  {why} [{}]", tests.join(", "));
        }
    }
    if !failures.is_empty() {
        println!("\nFailures:");
        for f in &failures {
            println!("  {f}");
        }
        bail!("{} conformance test(s) failed", failures.len());
    }
    let _ = providers;
    Ok(())
}
