//! The module page's charts: operation latency and bytes moved per minute
//! over the last hour, as inline SVG rendered on the server (no script, no
//! style attributes: colours are SVG presentation attributes), from
//! [`crate::module_stats::AdminMetrics::history`].

use maud::{Markup, html};

use crate::module_stats::MinuteStats;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 140.0;
/// The plot area inside the SVG (room for the axis labels).
const LEFT: f64 = 64.0;
const RIGHT: f64 = WIDTH - 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = HEIGHT - 22.0;

const WRITE_COLOUR: &str = "#2563eb";
const READ_COLOUR: &str = "#16a34a";
const P99_COLOUR: &str = "#dc2626";

/// Both charts, or a line saying there is nothing to draw yet.
pub fn module_charts(history: &[MinuteStats]) -> Markup {
    if history.iter().all(|m| m.operations == 0 && m.written_bytes == 0 && m.read_bytes == 0) {
        return html! { p class="muted" id="charts-empty" { "No operations in the last hour." } };
    }
    html! {
        (latency_chart(history))
        (bytes_chart(history))
    }
}

/// x of minute `i` of `n` (the centre of its slot).
fn x_of(i: usize, n: usize) -> f64 {
    LEFT + (i as f64 + 0.5) * (RIGHT - LEFT) / n.max(1) as f64
}

/// y of `value` on a scale from 0 to `max`.
fn y_of(value: f64, max: f64) -> f64 {
    BOTTOM - (value / max).clamp(0.0, 1.0) * (BOTTOM - TOP)
}

/// An SVG path through the minutes that have a value (gaps stay gaps).
fn line(values: &[Option<f64>], max: f64) -> String {
    let mut d = String::new();
    let mut drawing = false;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let op = if drawing { 'L' } else { 'M' };
                d.push_str(&format!("{op}{:.1},{:.1} ", x_of(i, values.len()), y_of(*v, max)));
                drawing = true;
            }
            None => drawing = false,
        }
    }
    d.trim_end().to_owned()
}

/// A line through the minutes with a value, and a dot on each (a lone
/// minute has no line to show).
fn series(values: &[Option<f64>], max: f64, colour: &str) -> Markup {
    html! {
        path d=(line(values, max)) fill="none" stroke=(colour) stroke-width="1.5" {}
        @for (i, v) in values.iter().enumerate() {
            @if let Some(v) = v {
                circle cx=(format!("{:.1}", x_of(i, values.len()))) cy=(format!("{:.1}", y_of(*v, max))) r="2.5" fill=(colour) {}
            }
        }
    }
}

/// The frame both charts share: axes, the top value and the time span.
fn frame(id: &str, title: &str, top_label: &str, plot: Markup, legend: &[(&str, &str)]) -> Markup {
    html! {
        figure class="chart" {
            svg id=(id) xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
                width="100%" role="img" aria-label=(title) {
                title { (title) }
                line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(BOTTOM) stroke="#9ca3af" {}
                line x1=(LEFT) y1=(BOTTOM) x2=(RIGHT) y2=(BOTTOM) stroke="#9ca3af" {}
                text x=(LEFT - 4.0) y=(TOP + 8.0) text-anchor="end" font-size="10" fill="#6b7280" { (top_label) }
                text x=(LEFT - 4.0) y=(BOTTOM) text-anchor="end" font-size="10" fill="#6b7280" { "0" }
                text x=(LEFT) y=(HEIGHT - 6.0) font-size="10" fill="#6b7280" { "60 min ago" }
                text x=(RIGHT) y=(HEIGHT - 6.0) text-anchor="end" font-size="10" fill="#6b7280" { "now" }
                (plot)
            }
            figcaption {
                (title) ": "
                @for (name, colour) in legend {
                    svg width="10" height="10" aria-hidden="true" { rect width="10" height="10" fill=(colour) {} }
                    " " (name) " "
                }
            }
        }
    }
}

/// Mean and p99 latency per minute (p99: the upper bound of its bucket).
fn latency_chart(history: &[MinuteStats]) -> Markup {
    let mean: Vec<Option<f64>> = history.iter().map(|m| m.mean_s().map(|s| s * 1000.0)).collect();
    let p99: Vec<Option<f64>> =
        history.iter().map(|m| m.p99_s().filter(|s| s.is_finite()).map(|s| s * 1000.0)).collect();
    let max = mean.iter().chain(&p99).flatten().copied().fold(0.0, f64::max).max(1.0);
    let plot = html! {
        (series(&p99, max, P99_COLOUR))
        (series(&mean, max, WRITE_COLOUR))
    };
    frame(
        "chart-latency",
        "Operation latency per minute",
        &crate::views::ms(Some(max)),
        plot,
        &[("mean", WRITE_COLOUR), ("p99 (bucket bound)", P99_COLOUR)],
    )
}

/// Bytes written and read per minute, as bars side by side.
fn bytes_chart(history: &[MinuteStats]) -> Markup {
    let max = history.iter().map(|m| m.written_bytes.max(m.read_bytes)).max().unwrap_or(0).max(1) as f64;
    let slot = (RIGHT - LEFT) / history.len().max(1) as f64;
    let bar = |i: usize, value: u64, offset: f64, colour: &str| {
        let y = y_of(value as f64, max);
        html! {
            @if value > 0 {
                rect x=(format!("{:.1}", LEFT + i as f64 * slot + offset)) y=(format!("{y:.1}"))
                    width=(format!("{:.1}", slot * 0.4)) height=(format!("{:.1}", BOTTOM - y)) fill=(colour) {}
            }
        }
    };
    let plot = html! {
        @for (i, m) in history.iter().enumerate() {
            (bar(i, m.written_bytes, slot * 0.1, WRITE_COLOUR))
            (bar(i, m.read_bytes, slot * 0.5, READ_COLOUR))
        }
    };
    frame(
        "chart-bytes",
        "Bytes moved per minute",
        &csal_core::human_bytes(max as u64),
        plot,
        &[("written", WRITE_COLOUR), ("read", READ_COLOUR)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_at_minutes_without_operations() {
        assert_eq!(line(&[Some(1.0), None, Some(2.0), Some(2.0)], 2.0), "M130.0,63.0 M394.0,8.0 L526.0,8.0");
    }
}
