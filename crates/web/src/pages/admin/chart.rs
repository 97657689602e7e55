//! The lateness chart: the expiration queue's p50 and p99 lateness per minute, drawn on the
//! server as inline SVG (no script; the page's policy forbids inline script and styles, so
//! everything is drawn with presentation attributes).
//!
//! The SVG holds only numbers and clock times we format ourselves, never text from the API,
//! so the page may include it unescaped.

use std::fmt::Write;

use time::{Duration, OffsetDateTime};

use crate::api::operations::LatenessPoint;

/// The drawing's size in SVG units (it scales to the page's width).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 48.0;
/// Two points further apart than this are not joined by a line (minutes without firings).
const JOIN: Duration = Duration::seconds(90);

const P50_COLOUR: &str = "#0b57d0";
const P99_COLOUR: &str = "#a40e26";

/// One series of the chart.
struct Series {
    label: &'static str,
    colour: &'static str,
    /// Dashed, so the two lines differ without colour too.
    dash: Option<&'static str>,
    value: fn(&LatenessPoint) -> Option<f64>,
}

const SERIES: [Series; 2] = [
    Series {
        label: "p50",
        colour: P50_COLOUR,
        dash: None,
        value: |p| p.p50_ms,
    },
    Series {
        label: "p99",
        colour: P99_COLOUR,
        dash: Some("6 4"),
        value: |p| p.p99_ms,
    },
];

/// The chart of `points` over the `minutes` before `end`, or `None` when nothing fired in
/// that window (the page then says so instead of drawing empty axes).
pub fn lateness_svg(points: &[LatenessPoint], end: OffsetDateTime, minutes: i64) -> Option<String> {
    // A point is the start of its minute: the oldest may begin a little before the window.
    let start = end - Duration::minutes(minutes) - Duration::minutes(1);
    let mut shown: Vec<(OffsetDateTime, &LatenessPoint)> = points
        .iter()
        .filter(|p| p.count > 0 && (p.p50_ms.is_some() || p.p99_ms.is_some()))
        .filter_map(|p| p.at.map(|at| (at, p)))
        .filter(|(at, _)| *at >= start && *at <= end)
        .collect();
    let start = end - Duration::minutes(minutes);
    let start = shown
        .iter()
        .map(|(at, _)| *at)
        .min()
        .map_or(start, |first| first.min(start));
    if shown.is_empty() {
        return None;
    }
    shown.sort_by_key(|(at, _)| *at);
    let highest = shown
        .iter()
        .flat_map(|(_, p)| [p.p50_ms, p.p99_ms])
        .flatten()
        .fold(0.0_f64, f64::max);
    let (top, step) = scale(highest);

    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let span = (end - start).as_seconds_f64().max(1.0);
    let x = |at: OffsetDateTime| LEFT + (at - start).as_seconds_f64() / span * plot_width;
    let y = |ms: f64| TOP + plot_height - (ms.clamp(0.0, top) / top) * plot_height;

    let mut svg = String::new();
    let peak = shown
        .iter()
        .filter_map(|(at, p)| p.p99_ms.map(|ms| (*at, ms)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let description = match peak {
        Some((at, ms)) => format!(
            "p50 and p99 lateness of each minute from {} to {} UTC; the highest p99 was {} ms at {}.",
            hh_mm(start),
            hh_mm(end),
            number(ms),
            hh_mm(at)
        ),
        None => format!(
            "p50 lateness of each minute from {} to {} UTC.",
            hh_mm(start),
            hh_mm(end)
        ),
    };
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="lateness-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="lateness-chart-title lateness-chart-desc" font-family="system-ui, sans-serif" font-size="12">"##
    );
    let _ = write!(
        svg,
        r#"<title id="lateness-chart-title">Lateness of fired expiries, last {minutes} minutes</title><desc id="lateness-chart-desc">{description}</desc>"#
    );

    // Horizontal grid lines with the y axis' labels.
    let mut tick = 0.0;
    while tick <= top + step / 2.0 {
        let ty = y(tick);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{ty:.1}" x2="{:.1}" y2="{ty:.1}" stroke="#d0d7de" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#57606a">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 8.0,
            ty + 4.0,
            number(tick)
        );
        tick += step;
    }
    // The x axis, with a label every 15 minutes on the clock.
    let base = TOP + plot_height;
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{base:.1}" x2="{:.1}" y2="{base:.1}" stroke="#57606a" stroke-width="1"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base:.1}" stroke="#57606a" stroke-width="1"/>"##,
        WIDTH - RIGHT
    );
    for at in quarter_hours(start, end) {
        let tx = x(at);
        let _ = write!(
            svg,
            r##"<line x1="{tx:.1}" y1="{base:.1}" x2="{tx:.1}" y2="{:.1}" stroke="#57606a" stroke-width="1"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#57606a">{}</text>"##,
            base + 5.0,
            base + 18.0,
            hh_mm(at)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#1b1f24">Time (UTC)</text><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" fill="#1b1f24">Lateness (ms)</text>"##,
        LEFT + plot_width / 2.0,
        HEIGHT - 8.0,
        TOP + plot_height / 2.0
    );

    // The lines: one polyline per run of neighbouring minutes; a lone minute is a dot.
    for series in &SERIES {
        let values: Vec<(OffsetDateTime, f64)> = shown
            .iter()
            .filter_map(|(at, p)| (series.value)(p).map(|ms| (*at, ms)))
            .collect();
        let dash = series
            .dash
            .map_or(String::new(), |d| format!(r#" stroke-dasharray="{d}""#));
        for run in runs(&values) {
            if let [(at, ms)] = run {
                let _ = write!(
                    svg,
                    r#"<circle class="{}" cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                    series.label,
                    x(*at),
                    y(*ms),
                    series.colour
                );
            } else {
                let coordinates: Vec<String> = run
                    .iter()
                    .map(|(at, ms)| format!("{:.1},{:.1}", x(*at), y(*ms)))
                    .collect();
                let _ = write!(
                    svg,
                    r#"<polyline class="{}" points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                    series.label,
                    coordinates.join(" "),
                    series.colour
                );
            }
        }
    }

    // The legend, above the plot on the right.
    let mut lx = WIDTH - RIGHT - 150.0;
    for series in &SERIES {
        let dash = series
            .dash
            .map_or(String::new(), |d| format!(r#" stroke-dasharray="{d}""#));
        let _ = write!(
            svg,
            r##"<line x1="{lx:.1}" y1="12" x2="{:.1}" y2="12" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="16" fill="#1b1f24">{}</text>"##,
            lx + 24.0,
            series.colour,
            lx + 30.0,
            series.label
        );
        lx += 75.0;
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// The top of the y axis and the step between its labels: a round number of milliseconds
/// (1, 2 or 5 × 10ⁿ) giving four or five steps, at least 10 ms tall.
fn scale(highest: f64) -> (f64, f64) {
    let highest = highest.max(10.0);
    let rough = highest / 4.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * magnitude);
    ((highest / step).ceil() * step, step)
}

/// The points split where a minute has no value or minutes are missing between them.
fn runs(values: &[(OffsetDateTime, f64)]) -> Vec<&[(OffsetDateTime, f64)]> {
    let mut runs = Vec::new();
    let mut from = 0;
    for i in 1..=values.len() {
        if i == values.len() || values[i].0 - values[i - 1].0 > JOIN {
            runs.push(&values[from..i]);
            from = i;
        }
    }
    runs
}

/// The quarter hours of the clock (…:00, :15, :30, :45) from `start` to `end`.
fn quarter_hours(start: OffsetDateTime, end: OffsetDateTime) -> Vec<OffsetDateTime> {
    let quarter = 15 * 60;
    let first = (start.unix_timestamp() + quarter - 1).div_euclid(quarter) * quarter;
    (0..)
        .map(|i| first + i * quarter)
        .take_while(|t| *t <= end.unix_timestamp())
        .filter_map(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .collect()
}

/// `HH:MM` in UTC.
pub fn hh_mm(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:02}:{:02}", at.hour(), at.minute())
}

/// Milliseconds as people read them: whole numbers without decimals, small ones with one.
pub fn number(ms: f64) -> String {
    if ms >= 100.0 || ms.fract() == 0.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn point(at: OffsetDateTime, p50: Option<f64>, p99: Option<f64>, count: u64) -> LatenessPoint {
        LatenessPoint {
            at: Some(at),
            p50_ms: p50,
            p99_ms: p99,
            count,
        }
    }

    const END: OffsetDateTime = datetime!(2026-03-01 12:07:30 UTC);

    #[test]
    fn nothing_fired_draws_no_chart() {
        assert_eq!(lateness_svg(&[], END, 60), None);
        let idle = [point(END - Duration::minutes(3), None, None, 0)];
        assert_eq!(lateness_svg(&idle, END, 60), None);
        let too_old = [point(END - Duration::minutes(62), Some(5.0), Some(9.0), 2)];
        assert_eq!(lateness_svg(&too_old, END, 60), None, "outside the hour");
    }

    #[test]
    fn the_chart_has_labelled_axes_a_legend_and_both_lines() {
        let points: Vec<LatenessPoint> = (1..=3)
            .map(|m| {
                point(
                    END - Duration::minutes(m),
                    Some(10.0 * m as f64),
                    Some(100.0 * m as f64),
                    4,
                )
            })
            .collect();
        let svg = lateness_svg(&points, END, 60).expect("a chart");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains(r#"role="img""#), "{svg}");
        assert!(svg.contains("Time (UTC)") && svg.contains("Lateness (ms)"));
        assert!(svg.contains(">p50</text>") && svg.contains(">p99</text>"));
        assert_eq!(svg.matches(r#"<polyline class="p50""#).count(), 1);
        assert_eq!(svg.matches(r#"<polyline class="p99""#).count(), 1);
        assert!(svg.contains("the highest p99 was 300 ms at 12:04"), "{svg}");
        // Quarter hours from 11:07:30 to 12:07:30, and the y axis up to 300 ms.
        for label in [">11:15<", ">11:30<", ">11:45<", ">12:00<", ">300<", ">0<"] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
        assert!(
            !svg.contains("style="),
            "the page's policy forbids inline styles"
        );
    }

    #[test]
    fn a_gap_of_minutes_breaks_the_line_and_a_lone_minute_is_a_dot() {
        let points = [
            point(END - Duration::minutes(30), Some(4.0), Some(8.0), 1),
            point(END - Duration::minutes(29), Some(5.0), Some(9.0), 1),
            point(END - Duration::minutes(10), Some(6.0), None, 1),
        ];
        let svg = lateness_svg(&points, END, 60).unwrap();
        assert_eq!(svg.matches(r#"<polyline class="p50""#).count(), 1);
        assert_eq!(svg.matches(r#"<circle class="p50""#).count(), 1);
        assert_eq!(svg.matches(r#"<polyline class="p99""#).count(), 1);
        assert_eq!(svg.matches(r#"<circle class="p99""#).count(), 0);
    }

    #[test]
    fn the_y_axis_ends_on_a_round_number() {
        assert_eq!(scale(0.0), (10.0, 5.0));
        assert_eq!(scale(300.0), (300.0, 100.0));
        assert_eq!(scale(1234.0), (1500.0, 500.0));
        assert_eq!(scale(61_000.0), (80_000.0, 20_000.0));
    }
}
