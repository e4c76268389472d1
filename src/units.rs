//! Parsing of the units users type: durations (`250ms`, `1.5s`, `2m`) and rates (`1MB`, `10mbit`).

use std::time::Duration;

/// Parse a duration such as `0`, `50ms`, `1.5s`, `2m`, `1h`, `250us`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("'{text}' has no unit: write it like 500ms, 2s, 1m or 1h"))?;
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration: write it like 500ms, 2s, 1m or 1h"))?;
    let secs = match unit.trim() {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" | "sec" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "'{text}' has an unknown unit '{other}': use us, ms, s, m or h"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("'{text}' is not a valid duration"));
    }
    if secs > MAX_DURATION.as_secs_f64() {
        return Err(format!("'{text}' is too long: at most 365 days (8760h)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The longest duration anything takes: a year. Longer values are refused where they are
/// parsed, so no timer or deadline ever overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 86_400);

/// Parse a byte rate in bytes per second: `0` (unlimited), `500000`, `512kB`, `10MB`, `1GB`,
/// or bits with `kbit`, `mbit`, `gbit` (as `tc` writes them).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim().trim_end_matches("/s");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a rate: write it like 500kB, 10MB or 100mbit"))?;
    let factor = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "kbit" => 1e3 / 8.0,
        "mbit" => 1e6 / 8.0,
        "gbit" => 1e9 / 8.0,
        other => {
            return Err(format!(
                "'{text}' has an unknown unit '{other}': use B, kB, MB, GB, kbit, mbit or gbit (per second)"
            ))
        }
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes > 1e15 {
        return Err(format!("'{text}' is too fast a rate: at most 1PB/s"));
    }
    Ok(bytes.round() as u64)
}

/// Format a duration the way `parse_duration` reads it back.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms == 0.0 {
        "0ms".into()
    } else if ms < 1.0 {
        format!("{}us", d.as_micros())
    } else if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if ms < 10_000.0 {
        format!("{}ms", trim_float(ms))
    } else {
        format!("{}s", trim_float(d.as_secs_f64()))
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("10 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("100000000000000000000s")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_duration("-5s").is_err());
        assert_eq!(parse_duration("8760h").unwrap(), MAX_DURATION);
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("0").unwrap(), 0);
        assert_eq!(parse_rate("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_rate("8mbit").unwrap(), 1_000_000);
        assert_eq!(parse_rate("512kB/s").unwrap(), 512_000);
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn format_round_trips() {
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        for d in ["0ms", "50ms", "1.5ms", "250us", "12s", "1s"] {
            let parsed = parse_duration(d).unwrap();
            assert_eq!(
                parse_duration(&format_duration(parsed)).unwrap(),
                parsed,
                "{d}"
            );
        }
    }
}
