//! summary.json: one typed structure, written by the session and read back by `report`,
//! `compare`, `[matrix]` and the printed table. `tps` is ok transactions per second
//! everywhere; retries are counted apart from failures. No passwords.

pub use super::capacity::SweepSummary;
pub use super::drills::{Drills, Failover, Interruption, KeyCounts, Milestone, SplitBrainSeen};
pub use super::shards::{ExpectLine, MergedShards, ShardInfo, ShardRow};
use super::stats::RecordedRun;
pub use super::values::{latency_ms, lookup, number, quantiles, round, LatencyMs, Quantiles};
use crate::consistency::VerifyReport;
use crate::pg::ServerInfo;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of this structure; bumped when a key changes meaning (docs/results.md lists them).
pub const SCHEMA: u32 = 2;

/// The whole summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema: u32,
    pub tool: String,
    pub workload: String,
    pub description: Option<String>,
    pub variant: Option<String>,
    pub source: String,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub interrupted: bool,
    /// Seconds measured (after the warmup).
    pub duration_s: f64,
    pub planned_duration_s: Option<f64>,
    pub warmup_s: f64,
    pub seed: u64,
    pub cluster: ClusterInfo,
    pub server: ServerInfo,
    pub transactions: IndexMap<String, TxSummary>,
    pub total: TotalSummary,
    pub groups: IndexMap<String, GroupSummary>,
    pub warmup: OutcomeCounts,
    pub wal: WalSummary,
    pub standbys: IndexMap<String, StandbySummary>,
    pub connections: ConnectionCounts,
    pub read_your_writes: RywCounts,
    /// Events on the timeline (events.csv rows).
    pub events: u64,
    /// What the drills measured (DESIGN section 7).
    #[serde(default)]
    pub drills: Drills,
    /// `[run] verify = true`: every node compared at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
    /// `[sweep]`: each step, the max sustainable rate, the projections (DESIGN section 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<SweepSummary>,
    /// `run --shard`: this shard and how it met the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// `merge`: the shards behind this result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<MergedShards>,
    /// `[expect]` verdicts, in the file's order.
    #[serde(default)]
    pub expect: Vec<Verdict>,
}

/// Where the run ran: the lab or a cluster of the user's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// `lab` or `external`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// The lab's sync mode (`async`, `first:1`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    pub nodes: Vec<NodeAddress>,
    /// The lab's links when the run started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkInfo>,
    /// Who decides failovers, when not the tool: an orchestrator and its timeouts in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<HaInfo>,
    /// Where the load's writes and reads went when not to the nodes themselves (a proxy's
    /// ports, a multi-host string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes_via: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads_via: Option<String>,
}

/// summary.json `cluster.ha`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HaInfo {
    /// `pg_auto_failover`, `patroni`, or `observed` (a `[cluster]`: the tool watched its nodes).
    pub kind: String,
    /// The orchestrator's timeouts in force when the run started.
    #[serde(default)]
    pub settings: IndexMap<String, String>,
}

/// A node and where it listens (`user@host:port/db`, never a password).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeAddress {
    pub name: String,
    pub at: String,
}

/// A lab link's shaping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub node: String,
    #[serde(default)]
    pub delay_ms: f64,
    /// Bytes per second; 0 = unlimited.
    #[serde(default)]
    pub rate: u64,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub cut: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxSummary {
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    /// Tries after the first (serialization failures and deadlocks retried, max_tries).
    #[serde(default)]
    pub retries: u64,
    /// Transactions that needed more than one try.
    #[serde(default)]
    pub retried: u64,
    /// ok per second.
    pub tps: f64,
    pub rows: u64,
    pub failed_by_sqlstate: BTreeMap<String, u64>,
    pub latency_ms: LatencyMs,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TotalSummary {
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    #[serde(default)]
    pub retries: u64,
    pub tps: f64,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSummary {
    pub clients: u32,
    pub rate_intended: Option<f64>,
    /// `off` or `lsn`.
    pub read_your_writes: String,
    pub stop_after: Option<u64>,
    #[serde(default = "one")]
    pub max_tries: u32,
    /// Actual minus intended start (open model only).
    pub schedule_lag_ms: Option<LatencyMs>,
    /// Intended slots not started when the run stopped (open model only).
    pub backlog: Option<u64>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WalSummary {
    pub bytes: Option<u64>,
    pub bytes_per_s: Option<f64>,
    pub bytes_per_tx: Option<f64>,
    #[serde(default)]
    pub rate_bytes_per_s: Option<Quantiles>,
    #[serde(default)]
    pub records: Option<i64>,
    #[serde(default)]
    pub fpi: Option<i64>,
    #[serde(default)]
    pub fpi_share: Option<f64>,
    /// The heartbeat's WAL during the measured part (left out of `bytes_per_tx`): the
    /// heartbeats committed times the WAL one writes, measured before the load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StandbySummary {
    pub lag_bytes: Quantiles,
    pub receive_lag_bytes: Quantiles,
    pub lag_seconds: Quantiles,
    pub pg_replay_lag_s: Quantiles,
    /// The heartbeat's visibility lag in milliseconds, one value per heartbeat (DESIGN
    /// section 16); absent without a heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_lag_ms: Option<Quantiles>,
    pub samples: u64,
    pub down_samples: u64,
    pub slot_retained_bytes_max: Option<u64>,
    pub wal_status: Option<String>,
    /// After its (last) interruption: see `drills.interruption`.
    #[serde(default)]
    pub catch_up_s: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionCounts {
    pub connect_failures: u64,
    pub reconnects: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RywCounts {
    pub checked_fresh: u64,
    pub waited: u64,
    pub fell_back_to_primary: u64,
    pub would_have_been_stale: u64,
}

/// One `[expect]` line judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub path: String,
    pub condition: String,
    pub actual: Option<f64>,
    pub passed: bool,
}

/// What the run was, beside what it measured.
#[derive(Debug, Clone)]
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
    pub cluster: ClusterInfo,
    pub server: ServerInfo,
    pub tx_names: Vec<String>,
    pub groups: Vec<GroupMeta>,
    pub shard: Option<ShardInfo>,
}

#[derive(Debug, Clone)]
pub struct GroupMeta {
    pub name: String,
    pub clients: u32,
    pub rate: Option<f64>,
    pub read_your_writes: bool,
    pub stop_after: Option<u64>,
    pub max_tries: u32,
    /// Filled at the end: intended slots not started when the run stopped.
    pub backlog: Option<u64>,
}

fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        round(n as f64 / secs, 1)
    } else {
        0.0
    }
}

/// Build the summary. `interrupted` is true for checkpoints and for a run stopped early.
pub fn build(meta: &RunMeta, run: &RecordedRun, interrupted: bool) -> RunSummary {
    let secs = run.measured_s;
    let mut total = TotalSummary::default();
    let mut transactions = IndexMap::new();
    for (name, t) in meta.tx_names.iter().zip(&run.tx) {
        total.ok += t.ok;
        total.failed += t.failed;
        total.unknown += t.unknown;
        total.retries += t.retries;
        total.rows += t.rows;
        transactions.insert(
            name.clone(),
            TxSummary {
                ok: t.ok,
                failed: t.failed,
                unknown: t.unknown,
                retries: t.retries,
                retried: t.retried,
                tps: per_s(t.ok, secs),
                rows: t.rows,
                failed_by_sqlstate: t.by_sqlstate.clone(),
                latency_ms: latency_ms(&t.latency),
            },
        );
    }
    total.tps = per_s(total.ok, secs);
    let groups = meta
        .groups
        .iter()
        .zip(&run.schedule_lag)
        .map(|(g, lag)| {
            let s = GroupSummary {
                clients: g.clients,
                rate_intended: g.rate,
                read_your_writes: if g.read_your_writes { "lsn" } else { "off" }.into(),
                stop_after: g.stop_after,
                max_tries: g.max_tries,
                schedule_lag_ms: g.rate.map(|_| latency_ms(lag)),
                backlog: g.backlog,
            };
            (g.name.clone(), s)
        })
        .collect();
    let standbys = run
        .standbys
        .iter()
        .map(|st| {
            let s = StandbySummary {
                lag_bytes: quantiles(&st.lag_bytes, 1.0),
                receive_lag_bytes: quantiles(&st.receive_lag_bytes, 1.0),
                lag_seconds: quantiles(&st.lag_us, 1e-6),
                pg_replay_lag_s: quantiles(&st.pg_replay_lag_us, 1e-6),
                heartbeat_lag_ms: (!st.heartbeat_lag_us.is_empty())
                    .then(|| quantiles(&st.heartbeat_lag_us, 1e-3)),
                samples: st.samples,
                down_samples: st.down_samples,
                slot_retained_bytes_max: st.slot_retained_max,
                wal_status: st.wal_status_last.clone(),
                catch_up_s: run
                    .drills
                    .interruption
                    .get(&st.name)
                    .and_then(|i| i.catch_up_s),
            };
            (st.name.clone(), s)
        })
        .collect();
    let c = &run.counters;
    RunSummary {
        schema: SCHEMA,
        tool: concat!("pgbench-repl ", env!("CARGO_PKG_VERSION")).into(),
        workload: meta.workload.clone(),
        description: meta.description.clone(),
        variant: meta.variant.clone(),
        source: meta.source.clone(),
        started_at: meta.started_at.clone(),
        ended_at: meta.ended_at.clone(),
        interrupted,
        duration_s: round(secs, 3),
        planned_duration_s: meta.planned_duration_s,
        warmup_s: meta.warmup_s,
        seed: meta.seed,
        cluster: meta.cluster.clone(),
        server: meta.server.clone(),
        wal: wal_summary(run, total.ok),
        transactions,
        total,
        groups,
        warmup: OutcomeCounts {
            ok: run.warmup.ok,
            failed: run.warmup.failed,
            unknown: run.warmup.unknown,
        },
        standbys,
        connections: ConnectionCounts {
            connect_failures: c.connect_failures,
            reconnects: c.reconnects,
        },
        read_your_writes: RywCounts {
            checked_fresh: c.ryw_checked,
            waited: c.ryw_waited,
            fell_back_to_primary: c.ryw_fallback,
            would_have_been_stale: c.ryw_waited + c.ryw_fallback,
        },
        events: run.events,
        drills: run.drills.clone(),
        verify: None,
        sweep: None,
        shard: meta.shard.clone(),
        shards: None,
        expect: Vec::new(),
    }
}

fn wal_summary(run: &RecordedRun, ok: u64) -> WalSummary {
    let w = &run.wal;
    if w.span_s <= 0.0 {
        return WalSummary::default();
    }
    // The heartbeat's own WAL is not the workload's.
    let heartbeat_bytes = w.heartbeat_wal_per_beat.map(|b| b * w.heartbeats);
    let workload_bytes = w.bytes.saturating_sub(heartbeat_bytes.unwrap_or(0));
    WalSummary {
        bytes: Some(w.bytes),
        bytes_per_s: Some((w.bytes as f64 / w.span_s).round()),
        bytes_per_tx: (ok > 0).then(|| (workload_bytes as f64 / ok as f64).round()),
        heartbeat_bytes,
        rate_bytes_per_s: Some(quantiles(&w.rate, 1.0)),
        records: w.records,
        fpi: w.fpi,
        fpi_share: match (w.fpi, w.records) {
            (Some(f), Some(r)) if r > 0 => Some(round(f as f64 / r as f64, 4)),
            _ => None,
        },
    }
}

impl RunSummary {
    /// The number at `a.b.c` (keys may contain dots: the longest match wins).
    pub fn number_at(&self, path: &str) -> Option<f64> {
        let doc = serde_json::to_value(self).ok()?;
        lookup(&doc, path).and_then(number)
    }

    /// The transaction names, in the order of the workload.
    pub fn tx_names(&self) -> Vec<String> {
        self.transactions.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert!((l.p50.unwrap() - 2.0).abs() <= 0.002, "{l:?}");
        assert!((l.max.unwrap() - 3.0).abs() <= 0.003, "{l:?}");
        assert_eq!(
            latency_ms(&crate::record::new_histogram()),
            LatencyMs::default()
        );
    }

    fn meta() -> RunMeta {
        RunMeta {
            workload: "w".into(),
            description: None,
            variant: None,
            source: "w.toml".into(),
            started_at: "2026-11-23T00:00:00Z".into(),
            ended_at: None,
            warmup_s: 0.0,
            planned_duration_s: Some(2.0),
            seed: 1,
            cluster: ClusterInfo::default(),
            server: ServerInfo::default(),
            tx_names: vec!["a".into()],
            groups: vec![GroupMeta {
                name: "g".into(),
                clients: 1,
                rate: None,
                read_your_writes: false,
                stop_after: None,
                max_tries: 3,
                backlog: None,
            }],
            shard: None,
        }
    }

    #[test]
    fn tps_is_ok_per_second_and_the_document_round_trips() {
        let mut run = crate::record::Recorder::new(crate::record::RecorderSetup {
            tx_writes: vec![true],
            groups: 1,
            nodes: vec!["primary".into()],
            origin: tokio::time::Instant::now(),
            warmup: std::time::Duration::ZERO,
            lag_alert: None,
            steps: None,
            writes_via_access: false,
        })
        .into_run();
        run.measured_s = 2.0;
        run.tx[0].ok = 10;
        run.tx[0].failed = 4;
        run.tx[0].retries = 7;
        let s = build(&meta(), &run, false);
        assert_eq!(s.transactions["a"].tps, 5.0);
        assert_eq!(s.total.tps, 5.0);
        assert_eq!(s.total.retries, 7);
        assert_eq!(s.number_at("transactions.a.failed"), Some(4.0));
        let text = serde_json::to_string(&s).unwrap();
        let back: RunSummary = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
        assert!(text.contains("\"schema\":2"));
    }
}
