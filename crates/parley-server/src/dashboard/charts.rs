//! The dashboard's charts, drawn on the server as inline SVG: bars (stacked or side by
//! side), lines, a donut and the 7×24 heatmap. Every chart carries an accessible title
//! (`role="img"`, `aria-labelledby`) and a `<title>` per bar, point, slice or cell,
//! which the browser shows as a tooltip. Colours are presentation attributes, never
//! `style`, so that the pages' content security policy can forbid inline styles.

use maud::{html, Markup};

use super::i18n::Lang;

/// Colours of breakdown keys, in order (cycled past the twelfth key).
pub const PALETTE: [&str; 12] = [
    "#4f6bed", "#22a39f", "#f59e0b", "#e5484d", "#8e4ec6", "#0ea5e9", "#65a30d", "#db2777",
    "#a16207", "#64748b", "#14b8a6", "#f97316",
];

/// The colour of the `i`-th key of a breakdown.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// One series of a bar or line chart.
pub struct Series<'a> {
    pub label: &'a str,
    pub colour: &'a str,
    pub values: &'a [i64],
}

const W: f64 = 760.0;
const H: f64 = 240.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// The top of the value axis and its step: four steps of 1, 2, 2.5 or 5 × 10^k
/// (whole numbers) that reach `max`.
pub fn axis(max: i64) -> (i64, i64) {
    let max = max.max(1);
    let mut magnitude = 1i64;
    loop {
        for m in [1, 2, 5] {
            let step = m * magnitude;
            if step * 4 >= max {
                return (step * 4, step);
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

fn num(x: f64) -> String {
    format!("{:.1}", x)
}

/// The value axis: gridlines and their labels.
fn grid(lang: Lang, top: i64, step: i64) -> Markup {
    let plot_h = H - TOP - BOTTOM;
    html! {
        @for i in 0..=4 {
            @let v = step * i;
            @let y = TOP + plot_h - plot_h * (v as f64) / (top as f64);
            line x1=(num(LEFT)) x2=(num(W - RIGHT)) y1=(num(y)) y2=(num(y)) stroke=(if i == 0 { "#cbd5e1" } else { "#eef0f4" }) stroke-width="1" {}
            text x=(num(LEFT - 6.0)) y=(num(y + 4.0)) text-anchor="end" font-size="11" fill="#64748b" { (lang.int(v)) }
        }
    }
}

/// The bucket labels under the plot: at most about twelve, evenly spaced.
fn x_labels(labels: &[String]) -> Markup {
    let n = labels.len().max(1);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let every = n.div_ceil(12);
    html! {
        @for (i, label) in labels.iter().enumerate() {
            @if i % every == 0 {
                text x=(num(LEFT + slot * (i as f64 + 0.5))) y=(num(H - BOTTOM + 17.0)) text-anchor="middle" font-size="11" fill="#64748b" { (label) }
            }
        }
    }
}

fn svg_open(id: &str, title: &str, width: f64, height: f64, body: Markup) -> Markup {
    let title_id = format!("{id}-title");
    html! {
        svg class="chart" viewBox=(format!("0 0 {width} {height}")) role="img" aria-labelledby=(title_id) xmlns="http://www.w3.org/2000/svg" {
            title id=(title_id) { (title) }
            (body)
        }
    }
}

/// Bars per bucket: stacked (a breakdown's keys) or side by side (a bar component's
/// series). `labels` are the buckets as shown.
pub fn bars(
    id: &str,
    title: &str,
    lang: Lang,
    labels: &[String],
    series: &[Series],
    stacked: bool,
) -> Markup {
    let n = labels.len().max(1);
    let max = (0..labels.len())
        .map(|b| {
            let at = |s: &Series| s.values.get(b).copied().unwrap_or(0);
            if stacked {
                series.iter().map(at).sum()
            } else {
                series.iter().map(at).max().unwrap_or(0)
            }
        })
        .max()
        .unwrap_or(0);
    let (top, step) = axis(max);
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT - RIGHT) / n as f64;
    let group = slot * 0.72;
    let height = |v: i64| plot_h * v as f64 / top as f64;
    // (x, y, width, height, colour, tooltip) of every bar with a count.
    let mut rects: Vec<(f64, f64, f64, f64, &str, String)> = Vec::new();
    for (b, label) in labels.iter().enumerate() {
        let x0 = LEFT + slot * b as f64 + (slot - group) / 2.0;
        let w = if stacked {
            group
        } else {
            (group / series.len().max(1) as f64 - 1.0).max(1.0)
        };
        let mut base = 0i64;
        for (i, s) in series.iter().enumerate() {
            let v = s.values.get(b).copied().unwrap_or(0);
            if v > 0 {
                let tip = format!("{} · {label}: {}", s.label, lang.int(v));
                if stacked {
                    let y = TOP + plot_h - height(base + v);
                    rects.push((x0, y, w, height(v), s.colour, tip));
                } else {
                    let x = x0 + (w + 1.0) * i as f64;
                    rects.push((x, TOP + plot_h - height(v), w, height(v), s.colour, tip));
                }
            }
            base += v;
        }
    }
    let body = html! {
        (grid(lang, top, step))
        @for (x, y, w, h, fill, tip) in &rects {
            rect x=(num(*x)) y=(num(*y)) width=(num(*w)) height=(num(*h)) fill=(fill) {
                title { (tip) }
            }
        }
        (x_labels(labels))
    };
    svg_open(id, title, W, H, body)
}

/// Lines per series over the buckets, a dot per point.
pub fn lines(id: &str, title: &str, lang: Lang, labels: &[String], series: &[Series]) -> Markup {
    let n = labels.len().max(1);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .max()
        .unwrap_or(0);
    let (top, step) = axis(max);
    let plot_h = H - TOP - BOTTOM;
    let slot = (W - LEFT - RIGHT) / n as f64;
    let point = |b: usize, v: i64| {
        (
            LEFT + slot * (b as f64 + 0.5),
            TOP + plot_h - plot_h * v as f64 / top as f64,
        )
    };
    let body = html! {
        (grid(lang, top, step))
        @for s in series {
            @let points = s.values.iter().enumerate().map(|(b, v)| {
                let (x, y) = point(b, *v);
                format!("{},{}", num(x), num(y))
            }).collect::<Vec<_>>().join(" ");
            polyline points=(points) fill="none" stroke=(s.colour) stroke-width="2" stroke-linejoin="round" {}
            @for (b, v) in s.values.iter().enumerate() {
                @let (x, y) = point(b, *v);
                circle cx=(num(x)) cy=(num(y)) r="3" fill=(s.colour) {
                    title { (s.label) " · " (labels.get(b).map_or("", String::as_str)) ": " (lang.int(*v)) }
                }
            }
        }
        (x_labels(labels))
    };
    svg_open(id, title, W, H, body)
}

/// A donut of shares: `(label, colour, count)`, drawn from the top, clockwise, with the
/// total in the middle.
pub fn donut(id: &str, title: &str, lang: Lang, slices: &[(String, &str, i64)]) -> Markup {
    let total: i64 = slices.iter().map(|s| s.2).sum();
    let size = 200.0;
    let r = 70.0;
    // (colour, share in %, offset in %, tooltip) of every slice with a count.
    let mut arcs = Vec::new();
    let mut offset = 0.0f64;
    for (label, colour, count) in slices {
        if *count > 0 && total > 0 {
            let share = 100.0 * *count as f64 / total as f64;
            let tip = format!(
                "{label}: {} ({})",
                lang.int(*count),
                lang.percent(doc_percent(*count, total))
            );
            arcs.push((*colour, share, offset, tip));
            offset += share;
        }
    }
    let body = html! {
        circle cx="100" cy="100" r=(num(r)) fill="none" stroke="#eef0f4" stroke-width="34" {}
        @for (colour, share, offset, tip) in &arcs {
            circle cx="100" cy="100" r=(num(r)) fill="none" stroke=(colour) stroke-width="34"
                pathLength="100" stroke-dasharray=(format!("{:.3} {:.3}", share, 100.0 - share))
                stroke-dashoffset=(format!("{:.3}", -offset)) transform="rotate(-90 100 100)" {
                title { (tip) }
            }
        }
        text x="100" y="98" text-anchor="middle" font-size="22" font-weight="600" fill="#0f172a" { (lang.int(total)) }
        text x="100" y="118" text-anchor="middle" font-size="11" fill="#64748b" { (lang.ui().total) }
    };
    svg_open(id, title, size, size, body)
}

/// The SPEC's percentage (rounded half-up to two decimals).
fn doc_percent(count: i64, total: i64) -> f64 {
    parley_core::doc::percent(count, total)
}

/// Six shades from light to dark; zero has its own grey.
const SHADES: [&str; 6] = [
    "#e0e7ff", "#c7d2fe", "#a5b4fc", "#818cf8", "#6366f1", "#4338ca",
];
const ZERO: &str = "#f1f5f9";

/// The shade of a heatmap cell holding `v` of at most `max`.
pub fn shade(v: i64, max: i64) -> &'static str {
    if v <= 0 || max <= 0 {
        return ZERO;
    }
    let i = ((v as f64 / max as f64) * SHADES.len() as f64).ceil() as usize;
    SHADES[i.clamp(1, SHADES.len()) - 1]
}

/// The 7×24 heatmap (Monday first, local hours), with its colour scale and legend.
pub fn heatmap(id: &str, title: &str, lang: Lang, values: &[Vec<i64>]) -> Markup {
    let ui = lang.ui();
    let (left, top, cell_w, cell_h) = (44.0, 20.0, 28.0, 24.0);
    let width = left + 24.0 * cell_w + 4.0;
    let height = top + 7.0 * cell_h + 44.0;
    let max = values.iter().flatten().copied().max().unwrap_or(0);
    let legend_y = top + 7.0 * cell_h + 18.0;
    let body = html! {
        @for h in (0..24).step_by(3) {
            text x=(num(left + cell_w * (h as f64 + 0.5))) y="13" text-anchor="middle" font-size="11" fill="#64748b" { (format!("{h:02}")) }
        }
        @for (d, row) in values.iter().enumerate().take(7) {
            text x=(num(left - 8.0)) y=(num(top + cell_h * d as f64 + 16.0)) text-anchor="end" font-size="11" fill="#64748b" { (ui.days_short[d]) }
            @for (h, v) in row.iter().enumerate().take(24) {
                rect x=(num(left + cell_w * h as f64 + 1.0)) y=(num(top + cell_h * d as f64 + 1.0)) width=(num(cell_w - 2.0)) height=(num(cell_h - 2.0)) rx="3" fill=(shade(*v, max)) {
                    title { (ui.days_short[d]) " " (format!("{h:02}:00–{:02}:00", (h + 1) % 24)) ": " (lang.int(*v)) }
                }
            }
        }
        text x=(num(left)) y=(num(legend_y + 12.0)) font-size="11" fill="#64748b" { (ui.heatmap_low) " (0)" }
        @for (i, s) in std::iter::once(ZERO).chain(SHADES).enumerate() {
            rect x=(num(left + 80.0 + 22.0 * i as f64)) y=(num(legend_y)) width="20" height="16" rx="3" fill=(s) {}
        }
        text x=(num(left + 80.0 + 22.0 * 7.0 + 6.0)) y=(num(legend_y + 12.0)) font-size="11" fill="#64748b" { (ui.heatmap_high) " (" (lang.int(max)) ")" }
    };
    svg_open(id, title, width, height, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_reaches_the_largest_value_in_four_round_steps() {
        assert_eq!(axis(0), (4, 1));
        assert_eq!(axis(4), (4, 1));
        assert_eq!(axis(5), (8, 2));
        assert_eq!(axis(17), (20, 5));
        assert_eq!(axis(120), (200, 50));
        assert_eq!(axis(4001), (8000, 2000));
    }

    #[test]
    fn heatmap_shades_darken_with_the_count() {
        assert_eq!(shade(0, 10), ZERO);
        assert_eq!(shade(1, 10), SHADES[0]);
        assert_eq!(shade(10, 10), SHADES[5]);
        assert!(SHADES.iter().position(|s| *s == shade(6, 10)) > Some(1));
    }

    #[test]
    fn every_bar_and_slice_carries_its_tooltip() {
        let labels = vec!["Mon".to_string(), "Tue".to_string()];
        let a = [3, 0];
        let b = [1, 2];
        let svg = bars(
            "x",
            "Opened vs closed",
            Lang::En,
            &labels,
            &[
                Series {
                    label: "Opened",
                    colour: "#000",
                    values: &a,
                },
                Series {
                    label: "Closed",
                    colour: "#111",
                    values: &b,
                },
            ],
            false,
        )
        .into_string();
        assert!(svg.contains(r#"role="img" aria-labelledby="x-title""#));
        assert!(svg.contains("<title>Opened · Mon: 3</title>"));
        assert!(svg.contains("<title>Closed · Tue: 2</title>"));
        assert_eq!(svg.matches("<rect").count(), 3, "no bar for a zero");
        assert!(!svg.contains("style="), "no inline style under the CSP");
        let pie = donut(
            "p",
            "Share",
            Lang::Fr,
            &[("A".into(), "#000", 1), ("B".into(), "#111", 2)],
        )
        .into_string();
        assert!(pie.contains("<title>B: 2 (66,67\u{a0}%)</title>"), "{pie}");
    }
}
