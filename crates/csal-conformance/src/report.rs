//! Results of one conformance run: printed as a table, written as JSON for
//! `cargo xtask conformance`, and asserted by the provider's test.

use std::time::Duration;

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed, and why.
    Fail(String),
    /// Skipped because of a capability; the reason says which.
    Skip(String),
}

/// One test of one target.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TestResult {
    /// The test's name (a column of the matrix).
    pub name: String,
    /// Passed or why not.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How long it took.
    pub millis: u64,
}

/// The results of one target: what `cargo xtask conformance` reads.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The target's row name (`s3@moto`).
    pub label: String,
    /// The provider tested.
    pub provider_type: String,
    /// In the order run.
    pub results: Vec<TestResult>,
}

impl Report {
    /// An empty report of `label`.
    pub fn new(label: &str, provider_type: &str) -> Self {
        Report { label: label.to_owned(), provider_type: provider_type.to_owned(), results: Vec::new() }
    }

    /// A report where every test is skipped (the server was not there).
    pub fn skipped(label: &str, provider_type: &str, reason: &str) -> Self {
        let mut r = Report::new(label, provider_type);
        for (name, _) in crate::TESTS {
            r.push(name, Outcome::Skip(reason.to_owned()), Duration::ZERO);
        }
        r
    }

    /// Record one test's outcome.
    pub fn push(&mut self, name: &str, outcome: Outcome, elapsed: Duration) {
        self.results.push(TestResult { name: name.to_owned(), outcome, millis: elapsed.as_millis() as u64 });
    }

    /// The failed tests.
    pub fn failures(&self) -> Vec<&TestResult> {
        self.results.iter().filter(|r| matches!(r.outcome, Outcome::Fail(_))).collect()
    }

    /// Print the table and write `$CSAL_CONFORMANCE_REPORT_DIR/<label>.json`.
    pub fn finish(&self) {
        eprintln!("conformance: {} ({})", self.label, self.provider_type);
        for r in &self.results {
            match &r.outcome {
                Outcome::Pass => eprintln!("  PASS {:<45} {:>7} ms", r.name, r.millis),
                Outcome::Skip(why) => eprintln!("  SKIP {:<45} {why}", r.name),
                Outcome::Fail(why) => eprintln!("  FAIL {:<45} {why}", r.name),
            }
        }
        if let Some(dir) = std::env::var_os("CSAL_CONFORMANCE_REPORT_DIR") {
            let dir = std::path::PathBuf::from(dir);
            let file = dir.join(format!("{}.json", self.label.replace(['/', ' '], "_")));
            let written = std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::write(&file, serde_json::to_vec_pretty(self).expect("report serialises")));
            if let Err(e) = written {
                eprintln!("conformance: could not write {}: {e}", file.display());
            }
        }
    }

    /// Panic (failing the calling test) if any test failed.
    pub fn assert_passed(&self) {
        let failures = self.failures();
        if !failures.is_empty() {
            let list: Vec<String> = failures
                .iter()
                .map(|r| match &r.outcome {
                    Outcome::Fail(why) => format!("{}: {why}", r.name),
                    _ => unreachable!(),
                })
                .collect();
            panic!("{} conformance failures on {}:\n  {}", failures.len(), self.label, list.join("\n  "));
        }
    }
}
