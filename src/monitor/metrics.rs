//! `GET /metrics`: Prometheus text exposition through prometheus-client, base units, one
//! namespace (`pgbench_repl_`), the names of DESIGN section 12.

use super::state::MonitorState;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The exposition of the state as it is now.
pub fn render(m: &MonitorState) -> String {
    let mut reg = Registry::with_prefix("pgbench_repl");
    let up = Family::<Labels, Gauge>::default();
    let lag_s = Family::<Labels, FloatGauge>::default();
    let lag_bytes = Family::<Labels, Gauge>::default();
    let pg_lag = Family::<Labels, FloatGauge>::default();
    let slot = Family::<Labels, Gauge>::default();
    for n in &m.nodes {
        up.get_or_create(&labels(&[("node", &n.node), ("role", &n.role)]))
            .set(i64::from(n.ok));
        if n.role != "standby" {
            continue;
        }
        let s = [("standby", n.node.as_str())];
        if let Some(l) = n.lag_seconds {
            lag_s.get_or_create(&labels(&s)).set(l);
        }
        if let Some(b) = n.lag_bytes {
            let l = labels(&[("standby", &n.node), ("position", "replay")]);
            lag_bytes.get_or_create(&l).set(b as i64);
        }
        if let Some(b) = n.receive_lag_bytes {
            let l = labels(&[("standby", &n.node), ("position", "receive")]);
            lag_bytes.get_or_create(&l).set(b as i64);
        }
        if let Some(l) = n.pg_replay_lag_seconds {
            pg_lag.get_or_create(&labels(&s)).set(l);
        }
    }
    for n in m.nodes.iter().filter(|n| n.slot_retained_bytes.is_some()) {
        let status = n.wal_status.clone().unwrap_or_default();
        let l = labels(&[("slot", &n.node), ("wal_status", &status)]);
        slot.get_or_create(&l)
            .set(n.slot_retained_bytes.unwrap_or(0) as i64);
    }
    reg.register(
        "node_up",
        "1 when the node answers in its role, 0 otherwise",
        up,
    );
    reg.register(
        "standby_lag_seconds",
        "How old the newest primary position the standby has replayed is (LSN timeline, the tool's clock)",
        lag_s,
    );
    reg.register(
        "standby_lag_bytes",
        "Primary WAL position minus the standby's replay or receive position",
        lag_bytes,
    );
    reg.register(
        "pg_replay_lag_seconds",
        "pg_stat_replication.replay_lag as PostgreSQL reports it",
        pg_lag,
    );
    reg.register(
        "slot_retained_bytes",
        "Primary WAL position minus the slot's restart_lsn",
        slot,
    );
    let wal = Counter::<u64>::default();
    wal.inc_by(m.wal_bytes_total);
    reg.register(
        "wal_bytes",
        "WAL the primary wrote since the sampler started",
        wal,
    );
    if !m.tx.is_empty() {
        let txs = Family::<Labels, Counter>::default();
        let durations = Family::<Labels, Latency>::default();
        for (name, t) in &m.tx {
            for (outcome, n) in [("ok", t.ok), ("failed", t.failed), ("unknown", t.unknown)] {
                txs.get_or_create(&labels(&[("transaction", name), ("outcome", outcome)]))
                    .inc_by(n);
            }
            durations
                .get_or_create(&labels(&[("transaction", name)]))
                .copy_from(&t.duration);
        }
        reg.register("transactions", "Transactions that ended, by outcome", txs);
        reg.register(
            "transaction_duration_seconds",
            "Latency of ok transactions, from the intended start",
            durations,
        );
    }
    let mut out = String::new();
    let _ = encode(&mut out, &reg);
    out
}

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

    fn copy_from(&self, other: &Latency) {
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
