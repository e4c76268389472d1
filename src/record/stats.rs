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
            rows: 0,
            by_sqlstate: BTreeMap::new(),
            latency: new_histogram(),
        }
    }
}

/// ok / failed / unknown counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
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

/// Everything measured so far; the recorder's snapshot for summaries.
#[derive(Debug, Clone)]
pub struct RecordedRun {
    pub tx: Vec<TxStats>,
    /// Per group: actual start minus intended start (open model).
    pub schedule_lag: Vec<Histogram<u64>>,
    pub warmup: Counts,
    pub counters: CounterTotals,
    /// (seconds since the measured part began, insert LSN) of the first and last WAL readings
    /// of the measured part.
    pub wal_first: Option<(f64, u64)>,
    pub wal_last: Option<(f64, u64)>,
    /// Seconds of the measured part so far.
    pub measured_s: f64,
    pub events: u64,
}
