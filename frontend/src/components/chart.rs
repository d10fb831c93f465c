//! Small hand-drawn SVG charts (no chart library, to keep the wasm small):
//! a success-rate line over time with run volume under it, and horizontal
//! p50/p95 bars. The plots stretch to their box (`preserveAspectRatio=none`,
//! strokes do not scale); labels are HTML around them, so text never
//! stretches. They are built as (escaped) markup for `inner_html`: static
//! once drawn, and far smaller in wasm than typed views. The geometry is
//! pure and unit-tested.

use crate::format::html;

/// One hour of a rate chart.
#[derive(Clone, Debug, PartialEq)]
pub struct RatePoint {
    /// Where in the window the hour lies, 0 (start) to 1 (now).
    pub x: f64,
    /// Succeeded share of the hour's finished runs, 0 to 1.
    pub rate: f64,
    /// Runs finished in the hour.
    pub finished: i64,
    /// Runs failed in the hour.
    pub failed: i64,
    /// Tooltip.
    pub label: String,
}

/// Plot box of both charts: 100 x 100 user units.
const SIDE: f64 = 100.0;
/// Room around the rate line so its stroke and dots are not clipped.
const PAD_X: f64 = 2.0;
const PAD_Y: f64 = 6.0;

fn px(x: f64) -> f64 {
    PAD_X + x.clamp(0.0, 1.0) * (SIDE - 2.0 * PAD_X)
}

fn py(rate: f64) -> f64 {
    PAD_Y + (1.0 - rate.clamp(0.0, 1.0)) * (SIDE - 2.0 * PAD_Y)
}

/// Path data of the rate line, of its area down to 0 %, and of one dot
/// per point (zero-length segments drawn with round caps).
pub fn rate_paths(points: &[RatePoint]) -> (String, String, String) {
    let mut line = String::new();
    let mut dots = String::new();
    for (i, p) in points.iter().enumerate() {
        let (x, y) = (px(p.x), py(p.rate));
        line.push_str(&format!("{}{x:.2} {y:.2}", if i == 0 { "M" } else { " L" }));
        dots.push_str(&format!("M{x:.2} {y:.2}h0"));
    }
    let area = match (points.first(), points.last()) {
        (Some(a), Some(b)) if points.len() > 1 => {
            let bottom = py(0.0);
            format!(
                "M{:.2} {bottom:.2} {} L{:.2} {bottom:.2}Z",
                px(a.x),
                line.replacen('M', "L", 1),
                px(b.x)
            )
        }
        _ => String::new(),
    };
    (line, area, dots)
}

/// Path data of the volume bars (finished runs) and of their failed part,
/// scaled to the busiest hour; `slots` is the number of hours the window
/// spans (bar width).
pub fn volume_paths(points: &[RatePoint], slots: f64) -> (String, String) {
    let max = points.iter().map(|p| p.finished).max().unwrap_or(0).max(1) as f64;
    let width = ((SIDE - 2.0 * PAD_X) / slots.max(1.0) * 0.7).min(4.0);
    let bar = |p: &RatePoint, n: i64| {
        if n <= 0 {
            return String::new();
        }
        let h = n as f64 / max * SIDE;
        format!(
            "M{:.2} {SIDE}v-{h:.2}h{width:.2}v{h:.2}Z",
            px(p.x) - width / 2.0
        )
    };
    (
        points.iter().map(|p| bar(p, p.finished)).collect(),
        points.iter().map(|p| bar(p, p.failed)).collect(),
    )
}

/// The success rate over the window, with each hour's volume (failed part
/// in red) underneath, as HTML. `from` labels the window's start ("24 h
/// ago").
#[inline(never)]
pub fn rate_chart(points: &[RatePoint], slots: f64, from: &str) -> String {
    let (line, area, dots) = rate_paths(points);
    let (total, failed) = volume_paths(points, slots);
    let busiest = points.iter().map(|p| p.finished).max().unwrap_or(0);
    let n = points.len();
    let hit = (SIDE - 2.0 * PAD_X) / slots.max(1.0);
    let hits: String = points
        .iter()
        .map(|p| {
            format!(
                r#"<rect class="chart-hit" x="{:.2}" y="0" width="{hit:.2}" height="100"><title>{}</title></rect>"#,
                px(p.x) - hit / 2.0,
                html(&p.label)
            )
        })
        .collect();
    format!(
        r#"<div class="chart" data-testid="rate-chart"><div class="chart-axis" aria-hidden="true"><span>100%</span><span>50%</span><span>0%</span></div><svg class="chart-plot" viewBox="0 0 100 100" preserveAspectRatio="none" role="img" aria-label="Success rate, {n} hours with finished runs"><path class="chart-grid" d="M0 6H100M0 50H100M0 94H100"/><path class="chart-area" d="{area}"/><path class="chart-line" d="{line}" data-testid="rate-line" data-points="{n}"/><path class="chart-dots" d="{dots}"/>{hits}</svg><div class="chart-axis" aria-hidden="true" title="runs per hour"><span>{busiest}</span><span>0</span></div><svg class="chart-volume" viewBox="0 0 100 100" preserveAspectRatio="none" aria-hidden="true"><path class="chart-bar" d="{total}"/><path class="chart-bar-failed" d="{failed}"/></svg><div class="chart-x" aria-hidden="true"><span>{from}</span><span>now</span></div></div>"#
    )
}

/// A p95 bar with the p50 bar inside it, scaled to `max` milliseconds, as
/// HTML.
pub fn latency_bar(p50: f64, p95: f64, max: f64) -> String {
    let w = |v: f64| (v / max.max(1.0) * SIDE).clamp(0.5, SIDE);
    format!(
        r#"<svg class="bar-svg" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true"><rect class="bar-p95" width="{:.2}" height="10"/><rect class="bar-p50" y="2.5" width="{:.2}" height="5"/></svg>"#,
        w(p95),
        w(p50)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(x: f64, rate: f64, finished: i64, failed: i64) -> RatePoint {
        RatePoint {
            x,
            rate,
            finished,
            failed,
            label: String::new(),
        }
    }

    #[test]
    fn rate_line_spans_the_plot() {
        let (line, area, dots) = rate_paths(&[point(0.0, 1.0, 4, 0), point(1.0, 0.5, 2, 1)]);
        assert_eq!(line, "M2.00 6.00 L98.00 50.00");
        assert_eq!(area, "M2.00 94.00 L2.00 6.00 L98.00 50.00 L98.00 94.00Z");
        assert_eq!(dots, "M2.00 6.00h0M98.00 50.00h0");
    }

    #[test]
    fn a_single_hour_is_a_dot_without_area() {
        let (line, area, dots) = rate_paths(&[point(0.5, 0.0, 1, 1)]);
        assert_eq!(line, "M50.00 94.00");
        assert!(area.is_empty());
        assert_eq!(dots, "M50.00 94.00h0");
        assert_eq!(
            rate_paths(&[]),
            (String::new(), String::new(), String::new())
        );
    }

    #[test]
    fn volume_bars_scale_to_the_busiest_hour() {
        let (total, failed) = volume_paths(&[point(0.0, 1.0, 4, 0), point(1.0, 0.5, 2, 1)], 2.0);
        assert_eq!(
            total,
            "M0.00 100v-100.00h4.00v100.00ZM96.00 100v-50.00h4.00v50.00Z"
        );
        assert_eq!(failed, "M96.00 100v-25.00h4.00v25.00Z");
    }

    #[test]
    fn charts_escape_labels_and_count_points() {
        let mut p = point(0.5, 1.0, 1, 0);
        p.label = "<b>".into();
        let chart = rate_chart(&[p], 2.0, "1 h ago");
        assert!(chart.contains(r#"data-points="1""#));
        assert!(chart.contains("<title>&lt;b&gt;</title>"));
        assert!(latency_bar(50.0, 100.0, 100.0).contains(r#"width="100.00""#));
    }
}
