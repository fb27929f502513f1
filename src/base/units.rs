//! Units written in the configuration: durations and sizes, spelled the
//! way HAProxy spells them (`5s`, `100ms`, a bare number meaning
//! milliseconds; `16k`, `20k` entries).

use std::time::Duration;

/// Parses a HAProxy duration: a number followed by `us`, `ms`, `s`, `m`,
/// `h` or `d`. A bare number is milliseconds, as in HAProxy.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(format!(
            "`{text}` is not a duration: expected a number with an optional unit (us, ms, s, m, h, d), e.g. `5s` or `500ms`"
        ));
    }
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is too large for a duration"))?;
    let micros_per_unit: u64 = match unit {
        "us" => 1,
        "" | "ms" => 1_000,
        "s" => 1_000_000,
        "m" => 60_000_000,
        "h" => 3_600_000_000,
        "d" => 86_400_000_000,
        other => {
            return Err(format!(
                "`{text}`: unknown duration unit `{other}` (valid units: us, ms, s, m, h, d; a bare number is milliseconds)"
            ));
        }
    };
    value
        .checked_mul(micros_per_unit)
        .map(Duration::from_micros)
        .ok_or_else(|| format!("`{text}` is too large for a duration"))
}

/// Parses a size or count with an optional `k`, `m` or `g` suffix (powers
/// of 1024, as HAProxy does for `size` and buffer sizes).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, mult) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&text[..i], 1u64 << 20),
        Some((i, 'g' | 'G')) => (&text[..i], 1u64 << 30),
        _ => (text, 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|v| v.checked_mul(mult))
        .ok_or_else(|| {
            format!("`{text}` is not a size: expected a number with an optional k, m or g suffix, e.g. `20k`")
        })
}

/// Formats a duration the short way a user would write it back.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        format!("{}us", d.as_micros())
    } else if ms.is_multiple_of(86_400_000) {
        format!("{}d", ms / 86_400_000)
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("5000").unwrap(), Duration::from_millis(5000));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("8h").unwrap(), Duration::from_secs(8 * 3600));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_duration("10us").unwrap(), Duration::from_micros(10));
    }

    #[test]
    fn bad_durations_say_what_is_valid() {
        let e = parse_duration("5x").unwrap_err();
        assert!(e.contains("unknown duration unit `x`"), "{e}");
        assert!(parse_duration("s").unwrap_err().contains("not a duration"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999d").is_err());
    }

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("20k").unwrap(), 20 * 1024);
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert_eq!(parse_size("300").unwrap(), 300);
        assert!(parse_size("k").is_err());
        assert!(parse_size("1t").is_err());
    }

    #[test]
    fn durations_format_back() {
        assert_eq!(format_duration(Duration::from_secs(50)), "50s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    }
}
