//! The results of one run: the summary table (every target row), the
//! detail sections, the charts, and docs/benchmarks.md.

use std::path::Path;

use anyhow::Result;

use crate::contest::Comparison;
use crate::recorder::LoadReport;

/// How far below a peer a comparison may measure and still count as "at"
/// the peer. Two clients at parity do not measure equal here: the same
/// client's best of three moves 3-6 % from one minute to the next on this
/// 2-core machine (the server shares its cores), and a recorder run once
/// read 501.6 vs 502.2 MiB/s. Without a band, "at or ahead" would be a coin
/// flip on every row where the server, not the client, sets the speed.
/// Being ahead by more than the band is visible in the ratio itself.
pub const PARITY: f64 = 0.97;

/// The band as the target column says it: "within 3 %".
fn parity_band() -> String {
    format!("within {:.0} %", (1.0 - PARITY) * 100.0)
}

/// The target text of a "CSAL's speed at or ahead of a peer's" row.
pub fn parity_target() -> String {
    format!(">= {PARITY:.2}x (at: {}, or ahead)", parity_band())
}

/// The target text of a "CSAL's latency at or under a peer's" row.
pub fn parity_latency_target() -> String {
    format!("<= the peer's ({})", parity_band())
}

/// One line of the summary table.
pub struct Figure {
    pub name: String,
    pub value: String,
    pub target: String,
    pub met: bool,
}

impl Figure {
    /// A benchmark that could not run (its server is missing): a missed row, never a silent gap.
    pub fn not_run(what: &str, var: &str) -> Figure {
        Figure { name: what.into(), value: format!("not run ({var} unset)"), target: "run".into(), met: false }
    }

    /// A benchmark that failed part way: a missed row with its error's first line.
    pub fn failed(what: &str, error: &anyhow::Error) -> Figure {
        let error = format!("{error:#}");
        let first_line = error.lines().next().unwrap_or_default();
        Figure { name: what.into(), value: format!("failed: {first_line}"), target: "run".into(), met: false }
    }
}

/// Everything after this line of docs/benchmarks.md is written by hand and
/// kept when the bench rewrites the file.
pub const HAND_WRITTEN_MARKER: &str = "<!-- Everything below is written by hand; `cargo xtask bench` keeps it. -->";

pub struct Report {
    sizes: Vec<u64>,
    pub figures: Vec<Figure>,
    pub contests: Vec<Comparison>,
    pub recorder: Option<LoadReport>,
    pub filesync_size: Option<u64>,
    /// Further sections (Markdown), in order.
    pub sections: Vec<String>,
}

impl Report {
    /// A part's outcome: its value, or, when it failed, a missed row with
    /// its error (printed whole) and `None`, so the run goes on and one
    /// server's failure does not lose an hour of figures.
    pub fn part<T>(&mut self, what: &str, outcome: anyhow::Result<T>) -> Option<T> {
        match outcome {
            Ok(value) => Some(value),
            Err(e) => {
                eprintln!("csal-bench: {what} failed: {e:#}");
                self.figures.push(Figure::failed(what, &e));
                None
            }
        }
    }

    pub fn new(sizes: &[u64]) -> Report {
        Report {
            sizes: sizes.to_vec(),
            figures: Vec::new(),
            contests: Vec::new(),
            recorder: None,
            filesync_size: None,
            sections: Vec::new(),
        }
    }

    pub fn add_contest(&mut self, comparison: Comparison) {
        eprintln!("\n{}", comparison.markdown());
        self.contests.push(comparison);
    }

    pub fn missed(&self) -> Vec<&Figure> {
        self.figures.iter().filter(|f| !f.met).collect()
    }

    pub fn print(&self) {
        println!("\n{:<110} {:>34} {:>16}  met", "benchmark", "value", "target");
        for f in &self.figures {
            println!("{:<110} {:>34} {:>16}  {}", f.name, f.value, f.target, if f.met { "yes" } else { "MISSED" });
        }
        if let Some(load) = &self.recorder {
            println!("\n{}", load.markdown());
        }
    }

    /// Write the Markdown to `path` and the charts into `bench/` beside it,
    /// keeping the hand-written part of an existing file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let charts = crate::charts::write_all(&dir.join("bench"), self)?;
        let kept = std::fs::read_to_string(path)
            .ok()
            .and_then(|old| old.split_once(HAND_WRITTEN_MARKER).map(|(_, rest)| rest.to_owned()))
            .unwrap_or_default();
        let mut out = self.markdown(&charts);
        out.push('\n');
        out.push_str(HAND_WRITTEN_MARKER);
        out.push_str(&kept);
        if kept.is_empty() {
            out.push('\n');
        }
        std::fs::write(path, out)?;
        Ok(())
    }

    fn markdown(&self, charts: &[(String, String)]) -> String {
        let mut out = String::from("# Benchmarks\n\n");
        out.push_str(
            "Written by `cargo xtask bench` (release build), which exits non-zero when a target row is missed.\n\
             Every figure compares CSAL with peers measured in the same run on the same machine; memory is the\n\
             peak RSS (VmHWM) of a child process that does only that transfer or load. What the profiles showed,\n\
             and what was changed because of it, is at the end of this page.\n\n\
             Reproduce: `cargo xtask bench` (everything; starts s3s-fs, fake-gcs-server and Azurite, rewrites this\n\
             file and the charts in `docs/bench/`), or a part of it, printed only, e.g. `cargo xtask bench --only s3\n\
             --sizes 268435456 --rounds 1` (parts: s3, local-fs, cloud, recorder, dispatch, catalog, file-sync, listing, bwlimit, gateway, retention).\n\n",
        );
        let sizes: Vec<String> = self.sizes.iter().map(|s| format!("{} MiB", s >> 20)).collect();
        out.push_str(&format!(
            "Machine: {}, {} cores, {}; load average {} when the run ended; transfer sizes {}; run at {}.\n\n",
            machine::cpu_model(),
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            machine::memory_total(),
            machine::load_average(),
            sizes.join(" and "),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        ));
        out.push_str("## Targets\n\n| benchmark | value | target | met |\n|---|---|---|---|\n");
        for f in &self.figures {
            let met = if f.met { "yes" } else { "**MISSED**" };
            out.push_str(&format!("| {} | {} | {} | {met} |\n", f.name, f.value, f.target));
        }
        if !charts.is_empty() {
            out.push_str("\n## Charts\n\n");
            for (title, file) in charts {
                out.push_str(&format!("![{title}](bench/{file})\n\n"));
            }
        }
        if !self.contests.is_empty() {
            out.push_str("## Transfers: CSAL against its peers\n\n");
            out.push_str(
                "CSAL's ratio is its speed over the fastest peer's; a peer's ratio is its speed over CSAL's.\n\n",
            );
            for c in &self.contests {
                out.push_str(&c.markdown());
                out.push('\n');
            }
        }
        if let Some(load) = &self.recorder {
            out.push_str("## Recorder-shaped load\n\n");
            out.push_str(&load.markdown());
            out.push('\n');
        }
        for section in &self.sections {
            out.push_str(section);
            out.push('\n');
        }
        if let Some(size) = self.filesync_size {
            out.push_str(&format!(
                "## File-sync providers\n\n\
                 The file-sync rows run each provider's fake from `csal-fakes` in a child process of its own, so the\n\
                 {} MiB the fake stores is not counted; the measured process drives the provider through the router with\n\
                 the provider's default chunk size. Box is the highest because a body of unknown length is read up to\n\
                 the 20 MiB session threshold (to choose between one upload and a session) and then spooled to a temp\n\
                 file in 20 MiB pieces before the 8 MiB session parts go out.\n",
                size >> 20
            ));
        }
        out
    }
}

/// Facts about the machine for the report header.
mod machine {
    /// `model name` from /proc/cpuinfo.
    pub fn cpu_model() -> String {
        proc_field("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into())
    }

    /// `MemTotal` from /proc/meminfo, in GiB.
    pub fn memory_total() -> String {
        proc_field("/proc/meminfo", "MemTotal")
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or_else(|| "unknown RAM".into(), |kib| format!("{:.0} GiB RAM", kib as f64 / (1024.0 * 1024.0)))
    }

    /// The 1-minute load average (other work on the box makes throughput noisy).
    pub fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into())
    }

    fn proc_field(file: &str, name: &str) -> Option<String> {
        let text = std::fs::read_to_string(file).ok()?;
        let line = text.lines().find(|l| l.starts_with(name))?;
        Some(line.split_once(':')?.1.trim().to_owned())
    }
}
