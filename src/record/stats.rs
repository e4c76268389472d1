//! What a run measured, as the recorder keeps it: counts, histograms, counters, WAL positions.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// Latency histograms: microseconds, 1 us to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// One transaction name's totals over the measured part of the run.
#[derive(Debug, Clone)]
pub struct TxStats {
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    /// Tries after the first, over every transaction (max_tries).
    pub retries: u64,
    /// Transactions that needed more than one try.
    pub retried: u64,
    pub rows: u64,
    pub by_sqlstate: BTreeMap<String, u64>,
    /// Latency of the transactions that ended ok.
    pub latency: Histogram<u64>,
}

impl Default for TxStats {
    fn default() -> Self {
        TxStats {
            ok: 0,
            failed: 0,
            unknown: 0,
            retries: 0,
            retried: 0,
            rows: 0,
            by_sqlstate: BTreeMap::new(),
            latency: new_histogram(),
        }
    }
}

/// ok / failed / unknown counts, and the retries behind them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    pub retries: u64,
}

/// Events that are not transactions.
#[derive(Debug, Clone, Copy, Default)]
pub struct CounterTotals {
    pub connect_failures: u64,
    pub reconnects: u64,
    pub ryw_checked: u64,
    pub ryw_waited: u64,
    pub ryw_fallback: u64,
}

/// Histograms of byte counts: 1 byte to 1 TB, 3 significant digits.
pub fn new_bytes_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 1 << 40, 3).expect("valid histogram bounds")
}

/// One standby over the measured part of the run.
#[derive(Debug, Clone)]
pub struct StandbyStats {
    pub name: String,
    /// Replay byte lag (bytes).
    pub lag_bytes: Histogram<u64>,
    pub receive_lag_bytes: Histogram<u64>,
    /// Time lag by the LSN timeline (microseconds).
    pub lag_us: Histogram<u64>,
    /// PostgreSQL's replay_lag (microseconds), NULL samples left out.
    pub pg_replay_lag_us: Histogram<u64>,
    /// The heartbeat's visibility lag (microseconds), one value per heartbeat.
    pub heartbeat_lag_us: Histogram<u64>,
    pub samples: u64,
    pub down_samples: u64,
    pub slot_retained_max: Option<u64>,
    pub wal_status_last: Option<String>,
    pub zero_lag_samples: u64,
}

impl StandbyStats {
    pub fn new(name: &str) -> Self {
        StandbyStats {
            name: name.to_string(),
            lag_bytes: new_bytes_histogram(),
            receive_lag_bytes: new_bytes_histogram(),
            lag_us: new_histogram(),
            pg_replay_lag_us: new_histogram(),
            heartbeat_lag_us: new_histogram(),
            samples: 0,
            down_samples: 0,
            slot_retained_max: None,
            wal_status_last: None,
            zero_lag_samples: 0,
        }
    }
}

/// WAL over the measured part of the run.
#[derive(Debug, Clone)]
pub struct WalStats {
    /// Sum of the insert-LSN advances between samples (a timeline change adds nothing).
    pub bytes: u64,
    /// Seconds between the first and the last sample of the measured part.
    pub span_s: f64,
    /// WAL rate between consecutive samples (bytes/s).
    pub rate: Histogram<u64>,
    /// pg_stat_wal deltas: records and full-page images.
    pub records: Option<i64>,
    pub fpi: Option<i64>,
    /// Heartbeats committed during the measured part, and the WAL one writes.
    pub heartbeats: u64,
    pub heartbeat_wal_per_beat: Option<u64>,
}

impl Default for WalStats {
    fn default() -> Self {
        WalStats {
            heartbeats: 0,
            heartbeat_wal_per_beat: None,
            bytes: 0,
            span_s: 0.0,
            rate: new_bytes_histogram(),
            records: None,
            fpi: None,
        }
    }
}

/// A failover drill's write: which key, and how its transaction ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyOutcome {
    pub client: u32,
    pub seq: i64,
    pub acknowledged: bool,
    pub unknown: bool,
    /// When it ended, seconds since the start.
    pub t_s: f64,
}

/// Everything measured so far; the recorder's snapshot for summaries.
#[derive(Debug, Clone)]
pub struct RecordedRun {
    pub tx: Vec<TxStats>,
    /// Per group: actual start minus intended start (open model).
    pub schedule_lag: Vec<Histogram<u64>>,
    pub warmup: Counts,
    pub counters: CounterTotals,
    pub wal: WalStats,
    pub standbys: Vec<StandbyStats>,
    /// Seconds of the measured part so far.
    pub measured_s: f64,
    pub events: u64,
    /// What the drills measured so far (the whole run, warmup included).
    pub drills: super::drills::Drills,
    /// Every keyed write of a failover drill.
    pub keys: Vec<KeyOutcome>,
}

impl RecordedRun {
    /// The stats of standby `name`, created on first use (a node that becomes a standby during
    /// the run, such as a rejoined former primary, gets its own).
    pub fn standby_mut(&mut self, name: &str) -> &mut StandbyStats {
        match self.standbys.iter().position(|s| s.name == name) {
            Some(i) => &mut self.standbys[i],
            None => {
                self.standbys.push(StandbyStats::new(name));
                self.standbys.last_mut().expect("just pushed")
            }
        }
    }

    pub fn has_standby(&self, name: &str) -> bool {
        self.standbys.iter().any(|s| s.name == name)
    }
}
