//! SVG bar charts of the comparisons (plotters, SVG backend: no font files
//! needed), written beside docs/benchmarks.md and linked from it. CSAL's
//! bars are orange, the peers' grey.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::contest::{Client, Op};
use crate::recorder::{CLIENTS, LoadOutcome};
use crate::report::Report;

const CSAL_COLOR: RGBColor = RGBColor(0xd9, 0x53, 0x1e);
const PEER_COLOR: RGBColor = RGBColor(0xa0, 0xa0, 0xa0);
const WIDTH: u32 = 760;
/// Pixels per bar (its label above it, then the bar).
const ROW: u32 = 34;

struct Bar {
    label: String,
    value: f64,
    csal: bool,
}

/// Horizontal bars, top to bottom, each with its label and value above it.
fn bar_chart(path: &Path, title: &str, unit: &str, bars: &[Bar]) -> Result<()> {
    let height = 90 + ROW * bars.len() as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max).max(1e-9) * 1.1;
    let n = bars.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 17))
        .margin(14)
        .x_label_area_size(32)
        .y_label_area_size(4)
        .build_cartesian_2d(0f64..max, 0f64..n)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc(unit)
        .x_labels(6)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let label_style = TextStyle::from(("sans-serif", 13)).pos(Pos::new(HPos::Left, VPos::Top));
    for (i, bar) in bars.iter().enumerate() {
        let top = n - i as f64;
        let color = if bar.csal { CSAL_COLOR } else { PEER_COLOR };
        chart
            .draw_series(std::iter::once(Rectangle::new([(0.0, top - 0.5), (bar.value, top - 0.92)], color.filled())))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let text = format!("{}: {:.1} {unit}", bar.label, bar.value);
        chart
            .draw_series(std::iter::once(Text::new(text, (max * 0.005, top - 0.04), label_style.clone())))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e:?}")).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Every chart of `report` into `dir`; returns (title, file name) for the links.
pub fn write_all(dir: &Path, report: &Report) -> Result<Vec<(String, String)>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for c in &report.contests {
        let title = format!("{}, {:.0} MiB: MiB/s (best of rounds)", c.backend.title(), c.size_mib());
        let file = format!("{}-{}mib.svg", c.backend.slug(), c.size >> 20);
        let mut bars = Vec::new();
        for op in [Op::Upload, Op::Download] {
            for row in c.rows(op) {
                bars.push(Bar {
                    label: format!("{} {}", op.arg(), row.client.label()),
                    value: row.mib_s,
                    csal: row.client == Client::Csal,
                });
            }
        }
        bar_chart(&dir.join(&file), &title, "MiB/s", &bars)?;
        written.push((title, file));
    }
    if let Some(load) = &report.recorder {
        type Metric = (&'static str, &'static str, &'static str, fn(&LoadOutcome) -> f64);
        let metrics: [Metric; 2] = [
            ("throughput", "MiB/s", "recorder-throughput.svg", LoadOutcome::mib_s),
            ("p99 write latency", "ms", "recorder-p99.svg", |o| o.p99_ms),
        ];
        for (what, unit, file, value) in metrics {
            let title = format!("Recorder load on s3s-fs: {what}");
            let mut bars = Vec::new();
            for (phase, outcomes) in &load.results {
                for (client, o) in CLIENTS.iter().zip(outcomes) {
                    bars.push(Bar {
                        label: format!("{}, {}", client.label(), phase.label()),
                        value: value(o),
                        csal: *client == Client::Csal,
                    });
                }
            }
            bar_chart(&dir.join(file), &title, unit, &bars)?;
            written.push((title, file.to_owned()));
        }
    }
    Ok(written)
}
