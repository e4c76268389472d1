//! summary.json: the run in one self-describing document (no passwords).

use crate::record::RecordedRun;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Map, Value};

pub const SCHEMA: u32 = 1;

/// What the run was, beside what it measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunMeta {
    pub workload: String,
    pub description: Option<String>,
    pub variant: Option<String>,
    pub source: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub warmup_s: f64,
    pub planned_duration_s: Option<f64>,
    pub seed: u64,
    pub cluster: Value,
    pub server: Value,
    pub tx_names: Vec<String>,
    pub groups: Vec<GroupMeta>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupMeta {
    pub name: String,
    pub clients: u32,
    pub rate: Option<f64>,
    pub read_your_writes: bool,
    pub stop_after: Option<u64>,
    /// Filled at the end: intended slots not started when the run stopped.
    pub backlog: Option<u64>,
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// mean, p50, p90, p99, p999, max in milliseconds (null when nothing was recorded).
pub fn latency_ms(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"mean": null, "p50": null, "p90": null, "p99": null, "p999": null, "max": null});
    }
    json!({
        "mean": (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
        "p50": ms(h.value_at_quantile(0.5)),
        "p90": ms(h.value_at_quantile(0.9)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

/// p50, p99, max of a histogram times `scale` (null when empty).
pub fn quantiles(h: &Histogram<u64>, scale: f64) -> Value {
    if h.is_empty() {
        return json!({"p50": null, "p99": null, "max": null});
    }
    let v = |x: u64| {
        let scaled = x as f64 * scale;
        if scale >= 1.0 {
            Value::from(scaled.round())
        } else {
            Value::from((scaled * 1e6).round() / 1e6)
        }
    };
    json!({"p50": v(h.value_at_quantile(0.5)), "p99": v(h.value_at_quantile(0.99)), "max": v(h.max())})
}

fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        (n as f64 / secs * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Build the summary. `interrupted` is true for checkpoints and for a run stopped early.
pub fn build(meta: &RunMeta, run: &RecordedRun, interrupted: bool) -> Value {
    let secs = run.measured_s;
    let mut txs = Map::new();
    let (mut ok, mut failed, mut unknown, mut rows) = (0, 0, 0, 0);
    for (name, t) in meta.tx_names.iter().zip(&run.tx) {
        ok += t.ok;
        failed += t.failed;
        unknown += t.unknown;
        rows += t.rows;
        txs.insert(
            name.clone(),
            json!({
                "ok": t.ok,
                "failed": t.failed,
                "unknown": t.unknown,
                "tps": per_s(t.ok, secs),
                "rows": t.rows,
                "failed_by_sqlstate": t.by_sqlstate,
                "latency_ms": latency_ms(&t.latency),
            }),
        );
    }
    let mut groups = Map::new();
    for (g, lag) in meta.groups.iter().zip(&run.schedule_lag) {
        groups.insert(
            g.name.clone(),
            json!({
                "clients": g.clients,
                "rate_intended": g.rate,
                "read_your_writes": if g.read_your_writes { "lsn" } else { "off" },
                "stop_after": g.stop_after,
                "schedule_lag_ms": if g.rate.is_some() { latency_ms(lag) } else { Value::Null },
                "backlog": g.backlog,
            }),
        );
    }
    let w = &run.wal;
    let wal = if w.span_s > 0.0 {
        json!({
            "bytes": w.bytes,
            "bytes_per_s": (w.bytes as f64 / w.span_s).round(),
            "bytes_per_tx": if ok > 0 { Value::from((w.bytes as f64 / ok as f64).round()) } else { Value::Null },
            "rate_bytes_per_s": quantiles(&w.rate, 1.0),
            "records": w.records,
            "fpi": w.fpi,
            "fpi_share": match (w.fpi, w.records) {
                (Some(f), Some(r)) if r > 0 => Value::from(((f as f64 / r as f64) * 1e4).round() / 1e4),
                _ => Value::Null,
            },
        })
    } else {
        json!({"bytes": null, "bytes_per_s": null, "bytes_per_tx": null})
    };
    let mut standbys = Map::new();
    for st in &run.standbys {
        standbys.insert(
            st.name.clone(),
            json!({
                "lag_bytes": quantiles(&st.lag_bytes, 1.0),
                "receive_lag_bytes": quantiles(&st.receive_lag_bytes, 1.0),
                "lag_seconds": quantiles(&st.lag_us, 1e-6),
                "pg_replay_lag_s": quantiles(&st.pg_replay_lag_us, 1e-6),
                "samples": st.samples,
                "down_samples": st.down_samples,
                "slot_retained_bytes_max": st.slot_retained_max,
                "wal_status": st.wal_status_last,
            }),
        );
    }
    let c = &run.counters;
    json!({
        "schema": SCHEMA,
        "tool": concat!("pgbench-repl ", env!("CARGO_PKG_VERSION")),
        "workload": meta.workload,
        "description": meta.description,
        "variant": meta.variant,
        "source": meta.source,
        "started_at": meta.started_at,
        "ended_at": meta.ended_at,
        "interrupted": interrupted,
        "duration_s": (secs * 1000.0).round() / 1000.0,
        "planned_duration_s": meta.planned_duration_s,
        "warmup_s": meta.warmup_s,
        "seed": meta.seed,
        "cluster": meta.cluster,
        "server": meta.server,
        "transactions": txs,
        "total": {
            "ok": ok,
            "failed": failed,
            "unknown": unknown,
            "tps": per_s(ok, secs),
            "rows": rows,
        },
        "groups": groups,
        "warmup": {"ok": run.warmup.ok, "failed": run.warmup.failed, "unknown": run.warmup.unknown},
        "wal": wal,
        "standbys": standbys,
        "connections": {"connect_failures": c.connect_failures, "reconnects": c.reconnects},
        "read_your_writes": {
            "checked_fresh": c.ryw_checked,
            "waited": c.ryw_waited,
            "fell_back_to_primary": c.ryw_fallback,
            "would_have_been_stale": c.ryw_waited + c.ryw_fallback,
        },
        "events": run.events,
    })
}

/// Look up `a.b.c` in the summary (keys may contain dots: the longest match wins).
pub fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_follows_paths_and_dotted_keys() {
        let doc = json!({"transactions": {"a.b": {"failed": 3}}, "total": {"ok": 5}});
        assert_eq!(lookup(&doc, "total.ok"), Some(&json!(5)));
        assert_eq!(lookup(&doc, "transactions.a.b.failed"), Some(&json!(3)));
        assert_eq!(lookup(&doc, "total.nope"), None);
    }

    #[test]
    fn latency_in_ms() {
        let mut h = crate::record::new_histogram();
        for v in [1000u64, 2000, 3000] {
            h.record(v).unwrap();
        }
        let l = latency_ms(&h);
        // HdrHistogram reports the highest value equivalent at 3 significant digits.
        assert!((l["p50"].as_f64().unwrap() - 2.0).abs() <= 0.002, "{l}");
        assert!((l["max"].as_f64().unwrap() - 3.0).abs() <= 0.003, "{l}");
    }
}
