//! What the endpoints serve, kept up to date by the recorder through the `Sink` it feeds:
//! every node's latest state, each standby's recent lag, the WAL written, and during a run the
//! transactions' counts and latency.

use super::latency::Latency;
use crate::messages::{EventRecord, ReplSample, StandbySample};
use crate::pg::format_lsn;
use crate::record::{IntervalRow, ProgressLine, RecordedRun, Sink};
use anyhow::Result;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// How much lag history the status page's sparklines show.
pub const HISTORY_S: f64 = 300.0;

/// One node as the endpoints show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeView {
    pub node: String,
    /// `primary`, `standby`, or `down` for a node that does not answer as either.
    pub role: String,
    pub ok: bool,
    /// pg_stat_replication on the primary.
    pub state: Option<String>,
    pub sync_state: Option<String>,
    /// The primary's current LSN, a standby's replay LSN.
    pub lsn: Option<String>,
    pub receive_lsn: Option<String>,
    pub lag_bytes: Option<u64>,
    pub receive_lag_bytes: Option<u64>,
    pub lag_seconds: Option<f64>,
    pub pg_replay_lag_seconds: Option<f64>,
    /// The heartbeat's visibility lag (DESIGN section 16), when the run writes one.
    pub heartbeat_lag_seconds: Option<f64>,
    pub slot_retained_bytes: Option<u64>,
    pub wal_status: Option<String>,
    pub timeline: Option<u32>,
}

/// Counts and latency of one transaction name (during a run).
pub struct TxMetrics {
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    pub duration: Latency,
}

/// Everything the endpoints read.
pub struct MonitorState {
    pub nodes: Vec<NodeView>,
    /// (t_s, time lag) per standby, oldest first, for HISTORY_S.
    pub history: BTreeMap<String, VecDeque<(f64, f64)>>,
    pub wal_bytes_total: u64,
    last_insert: Option<(String, u64)>,
    pub split_brain: bool,
    pub lag_alert: Option<f64>,
    pub tx: BTreeMap<String, TxMetrics>,
    pub tx_names: Vec<String>,
    /// Seconds since the sampler started, at the latest sample.
    pub t_s: f64,
    pub samples: u64,
}

pub type Shared = Arc<Mutex<MonitorState>>;

impl MonitorState {
    pub fn new(lag_alert: Option<f64>, tx_names: Vec<String>) -> Shared {
        Arc::new(Mutex::new(MonitorState {
            nodes: Vec::new(),
            history: BTreeMap::new(),
            wal_bytes_total: 0,
            last_insert: None,
            split_brain: false,
            lag_alert,
            tx: BTreeMap::new(),
            tx_names,
            t_s: 0.0,
            samples: 0,
        }))
    }

    fn take_sample(&mut self, t_s: f64, s: &ReplSample) {
        self.t_s = t_s;
        self.samples += 1;
        if let Some(lsn) = s.insert_lsn {
            if let Some((node, last)) = &self.last_insert {
                if *node == s.primary && lsn > *last && !s.timeline_changed {
                    self.wal_bytes_total += lsn - last;
                }
            }
            self.last_insert = Some((s.primary.clone(), lsn));
        }
        let mut nodes = vec![NodeView {
            node: s.primary.clone(),
            role: if s.primary_up { "primary" } else { "down" }.into(),
            ok: s.primary_up,
            lsn: s.current_lsn.map(format_lsn),
            timeline: s.timeline,
            ..Default::default()
        }];
        nodes.extend(s.standbys.iter().map(standby_view));
        self.split_brain = s.primary_up
            && s.standbys
                .iter()
                .any(|sb| sb.up && sb.in_recovery == Some(false));
        for sb in &s.standbys {
            if let (Some(l), Some(true)) = (sb.lag_s, sb.in_recovery) {
                let h = self.history.entry(sb.node.clone()).or_default();
                h.push_back((t_s, l));
                while h.front().is_some_and(|(t, _)| *t < t_s - HISTORY_S) {
                    h.pop_front();
                }
            }
        }
        self.nodes = nodes;
    }

    fn take_interval(&mut self, row: &IntervalRow, latency: &[Histogram<u64>]) {
        for ((name, x), h) in self.tx_names.iter().zip(&row.txs).zip(latency) {
            let m = self.tx.entry(name.clone()).or_insert_with(|| TxMetrics {
                ok: 0,
                failed: 0,
                unknown: 0,
                duration: Latency::default(),
            });
            m.ok += x.ok;
            m.failed += x.failed;
            m.unknown += x.unknown;
            for v in h.iter_recorded() {
                let secs = h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6;
                m.duration.observe_n(secs, v.count_at_value());
            }
        }
    }

    /// The largest time lag of the standbys that answer.
    pub fn max_lag(&self) -> Option<f64> {
        self.nodes
            .iter()
            .filter(|n| n.role == "standby")
            .filter_map(|n| n.lag_seconds)
            .reduce(f64::max)
    }
}

fn standby_view(sb: &StandbySample) -> NodeView {
    let role = match (sb.up, sb.in_recovery) {
        (true, Some(true)) => "standby",
        (true, Some(false)) => "primary",
        _ => "down",
    };
    NodeView {
        node: sb.node.clone(),
        role: role.into(),
        ok: sb.up && sb.in_recovery == Some(true),
        state: sb.state.clone(),
        sync_state: sb.sync_state.clone(),
        lsn: sb.replay_lsn.or(sb.current_lsn).map(format_lsn),
        receive_lsn: sb.receive_lsn.map(format_lsn),
        lag_bytes: sb.lag_bytes,
        receive_lag_bytes: sb.receive_lag_bytes,
        lag_seconds: sb.lag_s,
        pg_replay_lag_seconds: sb.pg_replay_lag_s,
        heartbeat_lag_seconds: sb.heartbeat_lag_s,
        slot_retained_bytes: sb.slot_retained_bytes,
        wal_status: sb.wal_status.clone(),
        timeline: None,
    }
}

/// The recorder's sink that keeps the monitor's state.
pub struct MonitorSink(pub Shared);

impl MonitorSink {
    fn with(&self, f: impl FnOnce(&mut MonitorState)) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state);
    }
}

impl Sink for MonitorSink {
    fn sample(&mut self, t_s: f64, s: &ReplSample) -> Result<()> {
        self.with(|m| m.take_sample(t_s, s));
        Ok(())
    }
    fn lag(&mut self, _: f64, _: &StandbySample) -> Result<()> {
        Ok(())
    }
    fn event(&mut self, _: f64, _: &EventRecord) -> Result<()> {
        Ok(())
    }
    fn interval(
        &mut self,
        row: &IntervalRow,
        latency: &[Histogram<u64>],
        _: &ProgressLine,
    ) -> Result<()> {
        self.with(|m| m.take_interval(row, latency));
        Ok(())
    }
    fn checkpoint(&mut self, _: &RecordedRun) -> Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
