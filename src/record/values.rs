//! The small value types every summary shares: latency in milliseconds, quantiles, and
//! reading a number at a path of a JSON document.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latency of ok transactions in milliseconds (null when there were none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

/// p50, p99 and max (null when nothing was recorded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// `v` rounded to `digits` decimals.
pub fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// mean, p50, p90, p99, p999, max of a microsecond histogram, in milliseconds.
pub fn latency_ms(h: &Histogram<u64>) -> LatencyMs {
    if h.is_empty() {
        return LatencyMs::default();
    }
    let ms = |us: u64| Some(round(us as f64 / 1000.0, 3));
    LatencyMs {
        mean: Some(round(h.mean() / 1000.0, 3)),
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
    }
}

/// p50, p99 and max of a histogram times `scale` (whole numbers when scale >= 1).
pub fn quantiles(h: &Histogram<u64>, scale: f64) -> Quantiles {
    if h.is_empty() {
        return Quantiles::default();
    }
    let v = |x: u64| {
        let scaled = x as f64 * scale;
        Some(if scale >= 1.0 {
            scaled.round()
        } else {
            round(scaled, 6)
        })
    };
    Quantiles {
        p50: v(h.value_at_quantile(0.5)),
        p99: v(h.value_at_quantile(0.99)),
        max: v(h.max()),
    }
}

/// A JSON value as a number: numbers as they are, true/false as 1/0 (so `[expect]` can say
/// `"drills.interruption.standby1.slot_lost" = "== 1"`).
pub fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
        other => other.as_f64(),
    }
}

/// Look up `a.b.c` in a JSON document (keys may contain dots: the longest match wins).
pub fn lookup<'a>(doc: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    if path.is_empty() {
        return Some(doc);
    }
    let obj = doc.as_object()?;
    let parts: Vec<&str> = path.split('.').collect();
    for n in (1..=parts.len()).rev() {
        let key = parts[..n].join(".");
        if let Some(v) = obj.get(&key) {
            return lookup(v, &parts[n..].join("."));
        }
    }
    None
}
