//! The `.hgrm` text format: HdrHistogram's percentile distribution table
//! ("Value Percentile TotalCount 1/(1-Percentile)", values in
//! milliseconds, five steps per halving of the distance to 100%) and its
//! `#[...]` footer lines, as read by HdrHistogram's plotting tools.

use hdrhistogram::Histogram;
use std::fmt::Write;

/// Iteration steps per halving of the remaining distance to 100%.
const TICKS_PER_HALF: u32 = 5;
/// Histogram values are microseconds; the file holds milliseconds.
const US_PER_MS: f64 = 1000.0;

/// The distribution of `h` (microseconds) as `.hgrm` text.
pub(crate) fn render(h: &Histogram<u64>) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(TICKS_PER_HALF) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / US_PER_MS;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    o,
                    "{value:>12.3} {q:>14.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                // 1/(1-1) is infinite: HdrHistogram leaves the column out.
                let _ = writeln!(o, "{value:>12.3} {q:>14.12} {total:>10}");
            }
        }
    }
    let (mean, stdev) = if h.is_empty() {
        (0.0, 0.0)
    } else {
        (h.mean() / US_PER_MS, h.stdev() / US_PER_MS)
    };
    let _ = writeln!(
        o,
        "#[Mean    = {mean:>12.3}, StdDeviation   = {stdev:>12.3}]"
    );
    let _ = writeln!(
        o,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / US_PER_MS,
        h.len()
    );
    let _ = writeln!(
        o,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_buckets(h.sigfig())
    );
    o
}

/// Sub-buckets per bucket for `sigfig` significant digits: the power of
/// two that holds 2 * 10^sigfig distinct values.
fn sub_buckets(sigfig: u8) -> u64 {
    let needed = 2 * 10u64.pow(u32::from(sigfig));
    needed.next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_footer() {
        let mut h = crate::stats::new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 10).unwrap();
        }
        let text = render(&h);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("Value") && lines[0].contains("1/(1-Percentile)"));
        assert_eq!(lines[1], "");
        let last_row = lines[lines.len() - 4];
        let cols: Vec<&str> = last_row.split_whitespace().collect();
        assert_eq!(cols.len(), 3, "{last_row}");
        assert_eq!(cols[1], "1.000000000000");
        assert_eq!(cols[2], "1000");
        assert!(lines[lines.len() - 3].starts_with("#[Mean    ="));
        assert!(lines[lines.len() - 2].contains("Total count    =         1000"));
        assert!(lines[lines.len() - 1].contains("SubBuckets     =         2048"));
    }
}
