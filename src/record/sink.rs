//! What the recorder hands out as the run goes: a lag row per standby and sample, an event
//! row, a one-second interval (counts, percentiles, its latency histograms, the progress line)
//! and a snapshot for the checkpointed summary. The session plugs the result files and the
//! progress display in; tests plug in a `Vec`.

use super::stats::RecordedRun;
use crate::messages::{EventRecord, StandbySample};
use anyhow::Result;
use hdrhistogram::Histogram;
use std::time::Duration;

/// One transaction's columns in a row of intervals.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalTx {
    /// ok transactions per second (as everywhere: failed and unknown are not throughput).
    pub tps: f64,
    pub ok: u64,
    pub failed: u64,
    pub unknown: u64,
    pub retries: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One second of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalRow {
    /// End of the interval, seconds since the start.
    pub t_s: f64,
    /// Start of the interval, seconds since the start.
    pub start_s: f64,
    /// Length of the interval: 1 s but for the last one.
    pub interval_s: f64,
    pub txs: Vec<IntervalTx>,
    pub wal_bytes_per_s: Option<f64>,
}

/// What one progress line shows.
#[derive(Debug, Clone)]
pub struct ProgressLine {
    pub elapsed: Duration,
    /// ok transactions per second over the last interval.
    pub tps: f64,
    pub p99_ms: Option<f64>,
    /// Failed and unknown over the last interval.
    pub errors: u64,
    pub warmup: bool,
    /// Per standby: the latest (byte lag, time lag in seconds); None while it is down.
    pub lag: Vec<(String, Option<(u64, f64)>)>,
}

/// Where the recorder's output goes.
pub trait Sink: Send {
    fn lag(&mut self, t_s: f64, sample: &StandbySample) -> Result<()>;
    fn event(&mut self, t_s: f64, event: &EventRecord) -> Result<()>;
    /// `latency`: this interval's histogram per transaction (ok transactions only).
    fn interval(
        &mut self,
        row: &IntervalRow,
        latency: &[Histogram<u64>],
        progress: &ProgressLine,
    ) -> Result<()>;
    /// After every interval: what was measured so far.
    fn checkpoint(&mut self, run: &RecordedRun) -> Result<()>;
    /// The run ended: flush everything.
    fn finish(&mut self) -> Result<()>;
}

/// A sink that keeps everything, for tests.
#[derive(Default)]
pub struct Collected {
    pub lag: Vec<(f64, StandbySample)>,
    pub events: Vec<(f64, EventRecord)>,
    pub intervals: Vec<IntervalRow>,
    pub progress: Vec<ProgressLine>,
    pub checkpoints: usize,
    pub finished: bool,
}

impl Sink for Collected {
    fn lag(&mut self, t_s: f64, sample: &StandbySample) -> Result<()> {
        self.lag.push((t_s, sample.clone()));
        Ok(())
    }
    fn event(&mut self, t_s: f64, event: &EventRecord) -> Result<()> {
        self.events.push((t_s, event.clone()));
        Ok(())
    }
    fn interval(
        &mut self,
        row: &IntervalRow,
        _: &[Histogram<u64>],
        p: &ProgressLine,
    ) -> Result<()> {
        self.intervals.push(row.clone());
        self.progress.push(p.clone());
        Ok(())
    }
    fn checkpoint(&mut self, _: &RecordedRun) -> Result<()> {
        self.checkpoints += 1;
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        self.finished = true;
        Ok(())
    }
}
