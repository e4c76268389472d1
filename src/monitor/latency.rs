//! A latency histogram in Prometheus buckets that prometheus-client can encode.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::{Arc, Mutex};

/// A latency histogram in Prometheus buckets, filled from the recorder's HDR histograms
/// (a value and its count at a time, so it costs nothing per transaction).
#[derive(Debug, Clone, Default)]
pub struct Latency(Arc<Mutex<LatencyCells>>);

#[derive(Debug, Clone)]
struct LatencyCells {
    /// (upper bound in seconds, count in this bucket alone); the last bound is +Inf.
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl Default for LatencyCells {
    fn default() -> Self {
        let mut buckets: Vec<(f64, u64)> = BUCKETS.iter().map(|b| (*b, 0)).collect();
        buckets.push((f64::MAX, 0));
        LatencyCells {
            buckets,
            sum: 0.0,
            count: 0,
        }
    }
}

/// Upper bounds in seconds: 0.5 ms to about 33 s, doubling.
const BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
    4.096, 8.192, 16.384, 32.768,
];

impl Latency {
    fn cells(&self) -> std::sync::MutexGuard<'_, LatencyCells> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `count` observations of `secs`.
    pub fn observe_n(&self, secs: f64, count: u64) {
        let mut c = self.cells();
        let i = c
            .buckets
            .iter()
            .position(|(le, _)| secs <= *le)
            .unwrap_or(c.buckets.len() - 1);
        c.buckets[i].1 += count;
        c.sum += secs * count as f64;
        c.count += count;
    }

    pub fn count(&self) -> u64 {
        self.cells().count
    }

    pub fn copy_from(&self, other: &Latency) {
        let theirs = other.cells().clone();
        *self.cells() = theirs;
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let c = self.cells().clone();
        encoder.encode_histogram::<NoLabelSet>(c.sum, c.count, &c.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}
