//! The result directory as a run writes it: every file the recorder feeds, line by line, the
//! progress display, and summary.json replaced (write, then rename) after every interval, so a
//! run killed at any moment leaves a summary at most about a second behind.

use super::files::{EventsWriter, IntervalsWriter, LagWriter};
use super::hlog::HlogWriter;
use super::progress::Progress;
use super::write_atomic;
use crate::messages::{EventRecord, StandbySample};
use crate::record::summary::{build, RunMeta};
use crate::record::{IntervalRow, ProgressLine, RecordedRun, Sink};
use anyhow::Result;
use hdrhistogram::Histogram;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// An event as a line on stderr: `warning:` for what needs a person (a lag alert, a split
/// brain), `info:` for the rest.
pub fn event_line(t_s: f64, e: &EventRecord) -> String {
    let level = match e.kind.as_str() {
        "lag_alert" | "split_brain" => "warning",
        _ => "info",
    };
    format!("{level}: {t_s:>7.2}s {} {} {}", e.kind, e.node, e.detail)
}

/// Events on stderr, nothing else: the `monitor` command's console.
pub struct ConsoleSink;

impl Sink for ConsoleSink {
    fn lag(&mut self, _: f64, _: &StandbySample) -> Result<()> {
        Ok(())
    }
    fn event(&mut self, t_s: f64, e: &EventRecord) -> Result<()> {
        crate::errln!("{}", event_line(t_s, e));
        Ok(())
    }
    fn interval(&mut self, _: &IntervalRow, _: &[Histogram<u64>], _: &ProgressLine) -> Result<()> {
        Ok(())
    }
    fn checkpoint(&mut self, _: &RecordedRun) -> Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Everything a run writes while it runs.
pub struct RunFiles {
    intervals: IntervalsWriter,
    events: EventsWriter,
    hlog: HlogWriter,
    lag: LagWriter,
    progress: Progress,
    summary_path: PathBuf,
    meta: RunMeta,
    events_shown: u64,
}

impl RunFiles {
    /// Create the files in `dir` (headers written at once); `start` is the wall clock at the
    /// run's origin, the zero of every timestamp.
    pub fn create(
        dir: &Path,
        meta: RunMeta,
        progress: Progress,
        start: SystemTime,
    ) -> Result<Self> {
        Ok(RunFiles {
            intervals: IntervalsWriter::create(&dir.join("intervals.csv"), &meta.tx_names)?,
            events: EventsWriter::create(&dir.join("events.csv"))?,
            hlog: HlogWriter::create(
                &dir.join("latency.hlog"),
                &meta.tx_names,
                start,
                "pgbench-repl latency log: one tag per transaction, values in microseconds",
            )?,
            lag: LagWriter::create(&dir.join("lag.csv"))?,
            progress,
            summary_path: dir.join("summary.json"),
            meta,
            events_shown: 0,
        })
    }
}

impl Sink for RunFiles {
    fn lag(&mut self, t_s: f64, sample: &StandbySample) -> Result<()> {
        self.lag.write(t_s, sample)
    }

    fn event(&mut self, t_s: f64, e: &EventRecord) -> Result<()> {
        // A storm of reconnect events would drown the terminal: the file keeps them all.
        let noisy = matches!(e.kind.as_str(), "node_down" | "node_up");
        if !noisy || self.events_shown < 100 {
            self.events_shown += u64::from(noisy);
            self.progress.note(&format!(
                "info: {t_s:>7.2}s {} {} {}",
                e.kind, e.node, e.detail
            ));
        }
        self.events.write(t_s, &e.kind, &e.node, &e.detail)
    }

    fn interval(
        &mut self,
        row: &IntervalRow,
        latency: &[Histogram<u64>],
        progress: &ProgressLine,
    ) -> Result<()> {
        for (i, h) in latency.iter().enumerate() {
            self.hlog.write(i, row.start_s, row.interval_s, h)?;
        }
        self.lag.flush()?;
        self.intervals.write(row)?;
        self.progress.update(progress);
        Ok(())
    }

    fn checkpoint(&mut self, run: &RecordedRun) -> Result<()> {
        let summary = build(&self.meta, run, true);
        write_atomic(&self.summary_path, &serde_json::to_vec_pretty(&summary)?)
    }

    fn finish(&mut self) -> Result<()> {
        self.progress.finish();
        self.intervals.flush()?;
        self.events.flush()?;
        self.hlog.flush()?;
        self.lag.flush()
    }
}
