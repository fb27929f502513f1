//! Latency-by-percentile charts, written by hand as SVG (no fonts, no
//! scripts, nothing fetched): the x axis is logarithmic in 1/(1-p), so
//! 90%, 99%, 99.9%... are evenly spaced; the y axis is latency in ms; one
//! coloured line per run, with a legend. The .html variant is a page that
//! holds the same SVG.

use crate::cli::PlotArgs;
use crate::report::decode_histogram;
use hdrhistogram::Histogram;
use std::fmt::Write;
use std::path::Path;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 70.0;
/// Line colours, in run order (wrapping).
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
/// Iteration steps per halving of the distance to 100%.
const TICKS_PER_HALF: u32 = 10;

/// One run's line: (decades of 1/(1-p), latency in ms) points.
pub(crate) struct Curve {
    /// Legend text.
    pub label: String,
    /// Points in increasing percentile; the 100% point is at x = infinity
    /// and is drawn at the right edge.
    pub points: Vec<(f64, f64)>,
    /// Samples in the run.
    pub count: u64,
}

impl Curve {
    /// The curve of a latency histogram in microseconds.
    pub(crate) fn new(label: String, h: &Histogram<u64>) -> Curve {
        let mut points = Vec::new();
        if !h.is_empty() {
            for v in h.iter_quantiles(TICKS_PER_HALF) {
                let q = v.quantile_iterated_to();
                let x = if q >= 1.0 {
                    f64::INFINITY
                } else {
                    -(1.0 - q).log10()
                };
                points.push((x, v.value_iterated_to() as f64 / 1000.0));
            }
        }
        Curve {
            label,
            points,
            count: h.len(),
        }
    }
}

/// `corral-bench plot`.
pub(crate) fn command(args: &PlotArgs) -> Result<(), String> {
    check_out(&args.out, "--out")?;
    if args.labels.len() > args.runs.len() {
        return Err(format!(
            "--label given {} times for {} run file(s): expected at most one label per run",
            args.labels.len(),
            args.runs.len()
        ));
    }
    let mut curves = Vec::new();
    for (i, path) in args.runs.iter().enumerate() {
        let (label, h) = load_run(path)?;
        let label = args.labels.get(i).cloned().or(label).unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("run {}", i + 1))
        });
        curves.push(Curve::new(label, &h));
    }
    write(&args.out, &curves, &args.title)
}

/// Checks that `path` (given with `flag`) names an .svg or .html file.
pub(crate) fn check_out(path: &Path, flag: &str) -> Result<(), String> {
    let lower = path.to_string_lossy().to_ascii_lowercase();
    if [".svg", ".html", ".htm"].iter().any(|e| lower.ends_with(e)) {
        Ok(())
    } else {
        Err(format!(
            "{flag} {}: expected a file name ending in .svg or .html",
            path.display()
        ))
    }
}

/// Reads a `run --json` output: its label (if any) and histogram.
fn load_run(path: &Path) -> Result<(Option<String>, Histogram<u64>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read it: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not the JSON of `corral-bench run --json`: {e}",
            path.display()
        )
    })?;
    let hist = v.get("histogram").and_then(|h| h.as_str()).ok_or_else(|| {
        format!(
            "{}: no `histogram` field: expected the output of `corral-bench run --json`",
            path.display()
        )
    })?;
    let h = decode_histogram(hist).map_err(|e| format!("{}: histogram: {e}", path.display()))?;
    let label = v.get("label").and_then(|l| l.as_str()).map(str::to_string);
    Ok((label, h))
}

/// Writes the chart to `path`: SVG, or an HTML page if it ends in .html.
pub(crate) fn write(path: &Path, curves: &[Curve], title: &str) -> Result<(), String> {
    let svg = render_svg(curves, title);
    let lower = path.to_string_lossy().to_ascii_lowercase();
    let text = if lower.ends_with(".html") || lower.ends_with(".htm") {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>{}</title>\n<style>body {{ font-family: sans-serif; margin: 2em; }}</style>\n</head>\n<body>\n{svg}</body>\n</html>\n",
            escape(title)
        )
    } else {
        svg
    };
    std::fs::write(path, text).map_err(|e| format!("{}: cannot write it: {e}", path.display()))
}

/// The chart as an SVG document.
pub(crate) fn render_svg(curves: &[Curve], title: &str) -> String {
    let count = curves.iter().map(|c| c.count).max().unwrap_or(0).max(1);
    // Decades shown: enough for the largest run's rarest sample, 2 to 6.
    let decades = ((count as f64).log10().ceil()).clamp(2.0, 6.0);
    let y_top = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let (y_max, y_step) = nice_axis(y_top);
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let (y0, y1) = (TOP, HEIGHT - BOTTOM);
    let sx = |x: f64| x0 + x.min(decades) / decades * (x1 - x0);
    let sy = |y: f64| y1 - y / y_max * (y1 - y0);

    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        o,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>"
    );
    let _ = writeln!(
        o,
        "<text x=\"{}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">{}</text>",
        WIDTH / 2.0,
        escape(title)
    );
    // Vertical grid and x labels: 0%, 50%, then each decade.
    let mut xticks = vec![(0.0, "0%".to_string()), (2f64.log10(), "50%".to_string())];
    for d in 1..=decades as u32 {
        xticks.push((f64::from(d), percent_label(d)));
    }
    for (x, label) in &xticks {
        let px = sx(*x);
        let _ = writeln!(
            o,
            "<line x1=\"{px:.1}\" y1=\"{y0}\" x2=\"{px:.1}\" y2=\"{y1}\" stroke=\"#dddddd\"/>"
        );
        let _ = writeln!(
            o,
            "<text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            y1 + 18.0
        );
    }
    // Horizontal grid and y labels.
    let decimals = (-(y_step.log10().floor())).max(0.0) as usize;
    let mut y = 0.0;
    while y <= y_max + y_step / 2.0 {
        let py = sy(y);
        let _ = writeln!(
            o,
            "<line x1=\"{x0}\" y1=\"{py:.1}\" x2=\"{x1}\" y2=\"{py:.1}\" stroke=\"#dddddd\"/>"
        );
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{y:.decimals$}</text>",
            x0 - 8.0,
            py + 4.0
        );
        y += y_step;
    }
    let _ = writeln!(
        o,
        "<rect x=\"{x0}\" y=\"{y0}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444444\"/>",
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(
        o,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">Percentile</text>",
        (x0 + x1) / 2.0,
        HEIGHT - 22.0
    );
    let _ = writeln!(
        o,
        "<text x=\"20\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 20 {:.1})\">Latency (ms)</text>",
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
    // One line per run.
    for (i, c) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut pts = String::new();
        for &(x, v) in &c.points {
            let _ = write!(pts, "{:.1},{:.1} ", sx(x), sy(v));
        }
        let _ = writeln!(
            o,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            pts.trim_end(),
            escape(&c.label)
        );
    }
    // Legend, top left (curves rise to the right).
    let longest = curves
        .iter()
        .map(|c| c.label.chars().count())
        .max()
        .unwrap_or(0);
    let lw = 46.0 + longest as f64 * 7.0;
    let lh = 10.0 + 20.0 * curves.len() as f64;
    let (lx, ly) = (x0 + 12.0, y0 + 12.0);
    let _ = writeln!(
        o,
        "<rect x=\"{lx}\" y=\"{ly}\" width=\"{lw:.1}\" height=\"{lh:.1}\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#999999\"/>"
    );
    for (i, c) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let row = ly + 15.0 + 20.0 * i as f64;
        let _ = writeln!(
            o,
            "<line x1=\"{:.1}\" y1=\"{row:.1}\" x2=\"{:.1}\" y2=\"{row:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>",
            lx + 8.0,
            lx + 32.0
        );
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 38.0,
            row + 4.0,
            escape(&c.label)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// "90%", "99%", "99.9%"... for decade `d` >= 1.
fn percent_label(d: u32) -> String {
    match d {
        1 => "90%".into(),
        2 => "99%".into(),
        _ => format!("99.{}%", "9".repeat(d as usize - 2)),
    }
}

/// The top of a y axis at or above `max`, and its tick step (1, 2 or 5
/// times a power of ten, about five ticks).
fn nice_axis(max: f64) -> (f64, f64) {
    let max = if max > 0.0 { max * 1.05 } else { 1.0 };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

/// Escapes text for XML.
fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if c.is_control() => {}
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_axes() {
        assert_eq!(percent_label(1), "90%");
        assert_eq!(percent_label(2), "99%");
        assert_eq!(percent_label(3), "99.9%");
        assert_eq!(percent_label(5), "99.999%");
        assert_eq!(nice_axis(9.0), (10.0, 2.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.2));
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn one_line_per_run() {
        let mut h = crate::stats::new_histogram();
        for v in 1..10_000u64 {
            h.record(v).unwrap();
        }
        let a = Curve::new("a<1>".into(), &h);
        let b = Curve::new("b".into(), &h);
        let svg = render_svg(&[a, b], "t");
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;1&gt;"));
        assert!(svg.contains("99.99%"));
    }
}
