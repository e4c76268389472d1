//! What the recorder hands out as the run goes: a lag row per standby and sample, an event
//! row, a one-second interval (counts, percentiles, its latency histograms, the progress line)
//! and a snapshot for the checkpointed summary. The session plugs the result files and the
//! progress display in; tests plug in a `Vec`.

use super::stats::RecordedRun;
use crate::messages::{EventRecord, ReplSample, StandbySample};
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
    /// A whole sample of the replication sampler (before its lag rows).
    fn sample(&mut self, _t_s: f64, _sample: &ReplSample) -> Result<()> {
        Ok(())
    }
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

/// Two sinks fed the same output (the result files and the monitor's endpoints).
pub struct Tee<A, B>(pub A, pub B);

impl<A: Sink, B: Sink> Sink for Tee<A, B> {
    fn sample(&mut self, t_s: f64, s: &ReplSample) -> Result<()> {
        self.0.sample(t_s, s)?;
        self.1.sample(t_s, s)
    }
    fn lag(&mut self, t_s: f64, s: &StandbySample) -> Result<()> {
        self.0.lag(t_s, s)?;
        self.1.lag(t_s, s)
    }
    fn event(&mut self, t_s: f64, e: &EventRecord) -> Result<()> {
        self.0.event(t_s, e)?;
        self.1.event(t_s, e)
    }
    fn interval(
        &mut self,
        row: &IntervalRow,
        l: &[Histogram<u64>],
        p: &ProgressLine,
    ) -> Result<()> {
        self.0.interval(row, l, p)?;
        self.1.interval(row, l, p)
    }
    fn checkpoint(&mut self, run: &RecordedRun) -> Result<()> {
        self.0.checkpoint(run)?;
        self.1.checkpoint(run)
    }
    fn finish(&mut self) -> Result<()> {
        self.0.finish()?;
        self.1.finish()
    }
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
