//! `GET /metrics`: Prometheus text exposition through prometheus-client, base units, one
//! namespace (`pgbench_repl_`), the names of DESIGN section 12.

use super::latency::Latency;
use super::state::MonitorState;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

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
    let hb_lag = Family::<Labels, FloatGauge>::default();
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
        if let Some(l) = n.heartbeat_lag_seconds {
            hb_lag.get_or_create(&labels(&s)).set(l);
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
        "standby_heartbeat_lag_seconds",
        "Visibility lag of the run's heartbeat: when the standby first showed the latest heartbeat minus when it committed, or the age of the oldest it has not shown",
        hb_lag,
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
