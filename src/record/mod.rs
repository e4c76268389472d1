//! The recorder: the only owner of histograms and counts. It takes every message from the
//! workers, writes the per-second files as the run goes, and hands back what was measured.

mod progress;
pub mod stats;

pub use progress::Progress;
pub use stats::{
    new_bytes_histogram, new_histogram, CounterTotals, Counts, RecordedRun, StandbyStats, TxStats,
    WalStats,
};

use crate::exec::{Counter, EventRecord, Outcome, Record, TxSample};
use crate::report::{
    EventsWriter, HlogWriter, IntervalRow, IntervalTx, IntervalsWriter, LagRow, LagWriter,
};
use crate::sampler::ReplSample;
use anyhow::Result;
use hdrhistogram::Histogram;
use progress::ProgressLine;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

/// Files the recorder writes as the run goes.
pub struct Writers {
    pub intervals: IntervalsWriter,
    pub events: EventsWriter,
    pub hlog: HlogWriter,
    pub lag: LagWriter,
    /// Called every few seconds with a snapshot, so a crash keeps a summary.
    pub checkpoint: Box<dyn FnMut(&RecordedRun) + Send>,
}

struct Interval {
    latency: Vec<Histogram<u64>>,
    counts: Vec<Counts>,
    /// (time, insert LSN) of the first and last WAL readings that bound this interval.
    wal_start: Option<(Instant, u64)>,
    wal_end: Option<(Instant, u64)>,
}

pub struct Recorder {
    origin: Instant,
    warmup_end: Instant,
    run: RecordedRun,
    interval: Interval,
    interval_start: Instant,
    writers: Writers,
    progress: Progress,
    /// The previous sample's (time, insert LSN, pg_stat_wal records, fpi).
    last_wal: Option<(Instant, u64, Option<i64>, Option<i64>)>,
    /// Latest (byte lag, time lag) per standby, for the progress line.
    latest_lag: Vec<Option<(u64, f64)>>,
}

impl Recorder {
    pub fn new(
        tx_count: usize,
        groups: usize,
        standbys: &[String],
        origin: Instant,
        warmup: Duration,
        writers: Writers,
        progress: Progress,
    ) -> Self {
        Recorder {
            origin,
            warmup_end: origin + warmup,
            run: RecordedRun {
                tx: (0..tx_count).map(|_| TxStats::default()).collect(),
                schedule_lag: (0..groups).map(|_| new_histogram()).collect(),
                warmup: Counts::default(),
                counters: CounterTotals::default(),
                wal: WalStats::default(),
                standbys: standbys.iter().map(|n| StandbyStats::new(n)).collect(),
                measured_s: 0.0,
                events: 0,
            },
            interval: Interval {
                latency: (0..tx_count).map(|_| new_histogram()).collect(),
                counts: vec![Counts::default(); tx_count],
                wal_start: None,
                wal_end: None,
            },
            interval_start: origin,
            writers,
            progress,
            last_wal: None,
            latest_lag: vec![None; standbys.len()],
        }
    }

    /// Record until every sender is gone; flush the last interval; return what was measured.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Record>) -> Result<RecordedRun> {
        let mut tick =
            tokio::time::interval_at(self.origin + Duration::from_secs(1), Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut seconds = 0u64;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.take(m)?,
                    None => break,
                },
                _ = tick.tick() => {
                    self.flush_interval()?;
                    seconds += 1;
                    if seconds.is_multiple_of(5) {
                        (self.writers.checkpoint)(&self.run);
                    }
                }
            }
        }
        let pending = self
            .interval
            .counts
            .iter()
            .any(|c| c.ok + c.failed + c.unknown > 0);
        if pending || Instant::now().duration_since(self.interval_start) > Duration::from_millis(50)
        {
            self.flush_interval()?;
        }
        self.progress.finish();
        self.writers.intervals.flush()?;
        self.writers.events.flush()?;
        self.writers.hlog.flush()?;
        self.writers.lag.flush()?;
        Ok(self.run)
    }

    fn take(&mut self, msg: Record) -> Result<()> {
        match msg {
            Record::Tx(s) => self.take_tx(s),
            Record::Event(e) => self.take_event(e)?,
            Record::Count(c) => {
                let t = &mut self.run.counters;
                match c {
                    Counter::ConnectFailure => t.connect_failures += 1,
                    Counter::Reconnect => t.reconnects += 1,
                    Counter::RywChecked => t.ryw_checked += 1,
                    Counter::RywWaited => t.ryw_waited += 1,
                    Counter::RywFallback => t.ryw_fallback += 1,
                }
            }
            Record::Sample(s) => self.take_sample(&s)?,
        }
        Ok(())
    }

    fn take_tx(&mut self, s: TxSample) {
        let i = s.tx as usize;
        let counts = &mut self.interval.counts[i];
        match s.outcome {
            Outcome::Ok => {
                counts.ok += 1;
                self.interval.latency[i].saturating_record(s.latency_us.max(1));
            }
            Outcome::Failed => counts.failed += 1,
            Outcome::Unknown => counts.unknown += 1,
        }
        if s.started < self.warmup_end {
            let w = &mut self.run.warmup;
            match s.outcome {
                Outcome::Ok => w.ok += 1,
                Outcome::Failed => w.failed += 1,
                Outcome::Unknown => w.unknown += 1,
            }
            return;
        }
        let t = &mut self.run.tx[i];
        match s.outcome {
            Outcome::Ok => {
                t.ok += 1;
                t.rows += s.rows;
                t.latency.saturating_record(s.latency_us.max(1));
            }
            Outcome::Failed => t.failed += 1,
            Outcome::Unknown => t.unknown += 1,
        }
        if let Some(code) = s.sqlstate {
            *t.by_sqlstate.entry(code).or_default() += 1;
        }
        if let Some(lag) = s.schedule_lag_us {
            self.run.schedule_lag[s.group as usize].saturating_record(lag);
        }
    }

    fn take_sample(&mut self, s: &ReplSample) -> Result<()> {
        let t = s.at.saturating_duration_since(self.origin).as_secs_f64();
        let measured = s.at >= self.warmup_end;
        if let Some(lsn) = s.insert_lsn {
            if s.timeline_changed {
                // A new primary: its LSNs do not continue the old one's.
                self.interval.wal_start = Some((s.at, lsn));
                self.last_wal = None;
            }
            self.interval.wal_start.get_or_insert((s.at, lsn));
            self.interval.wal_end = Some((s.at, lsn));
            if let Some((at0, lsn0, rec0, fpi0)) = self.last_wal {
                let secs = s.at.duration_since(at0).as_secs_f64();
                if measured && lsn >= lsn0 && secs > 0.0 {
                    let w = &mut self.run.wal;
                    w.bytes += lsn - lsn0;
                    w.span_s += secs;
                    w.rate
                        .saturating_record(((lsn - lsn0) as f64 / secs) as u64);
                    if let (Some(a), Some(b)) = (rec0, s.wal_records) {
                        *w.records.get_or_insert(0) += (b - a).max(0);
                    }
                    if let (Some(a), Some(b)) = (fpi0, s.wal_fpi) {
                        *w.fpi.get_or_insert(0) += (b - a).max(0);
                    }
                }
            }
            self.last_wal = Some((s.at, lsn, s.wal_records, s.wal_fpi));
        }
        for (i, sb) in s.standbys.iter().enumerate() {
            let name = self.run.standbys[i].name.clone();
            self.writers.lag.write(&LagRow {
                t_s: t,
                node: &name,
                sample: sb,
            })?;
            self.latest_lag[i] = match (sb.up, sb.lag_bytes, sb.lag_s) {
                (true, Some(b), Some(l)) => Some((b, l)),
                _ => None,
            };
            if !measured {
                continue;
            }
            let st = &mut self.run.standbys[i];
            st.samples += 1;
            if !sb.up {
                st.down_samples += 1;
                continue;
            }
            if let Some(b) = sb.lag_bytes {
                st.lag_bytes.saturating_record(b);
            }
            if let Some(b) = sb.receive_lag_bytes {
                st.receive_lag_bytes.saturating_record(b);
            }
            if let Some(l) = sb.lag_s {
                if l == 0.0 {
                    st.zero_lag_samples += 1;
                }
                st.lag_us.saturating_record((l * 1e6) as u64);
            }
            if let Some(l) = sb.pg_replay_lag_s {
                st.pg_replay_lag_us.saturating_record((l * 1e6) as u64);
            }
            if let Some(r) = sb.slot_retained_bytes {
                st.slot_retained_max = Some(st.slot_retained_max.map_or(r, |m| m.max(r)));
            }
            if sb.wal_status.is_some() {
                st.wal_status_last = sb.wal_status.clone();
            }
        }
        Ok(())
    }

    fn take_event(&mut self, e: EventRecord) -> Result<()> {
        self.run.events += 1;
        let t = e.at.saturating_duration_since(self.origin).as_secs_f64();
        if !matches!(e.kind.as_str(), "node_down" | "node_up") || self.run.events < 1000 {
            self.progress.note(&format!(
                "info: {t:>7.2}s {} {} {}",
                e.kind, e.node, e.detail
            ));
        }
        self.writers.events.write(t, &e.kind, &e.node, &e.detail)
    }

    /// Close the current one-second interval: a row of intervals.csv, histograms in the hlog.
    fn flush_interval(&mut self) -> Result<()> {
        let now = Instant::now();
        let secs = now
            .duration_since(self.interval_start)
            .as_secs_f64()
            .max(1e-3);
        let t_end = now.duration_since(self.origin).as_secs_f64();
        let t_start = self
            .interval_start
            .duration_since(self.origin)
            .as_secs_f64();
        let mut txs = Vec::with_capacity(self.interval.counts.len());
        let mut all_done = 0u64;
        let mut errors = 0u64;
        let mut worst_p99: Option<f64> = None;
        for (i, c) in self.interval.counts.iter().enumerate() {
            let h = &self.interval.latency[i];
            let done = c.ok + c.failed + c.unknown;
            all_done += done;
            errors += c.failed + c.unknown;
            let (p50, p99) = if h.is_empty() {
                (None, None)
            } else {
                (
                    Some(h.value_at_quantile(0.5) as f64 / 1000.0),
                    Some(h.value_at_quantile(0.99) as f64 / 1000.0),
                )
            };
            if let Some(p) = p99 {
                worst_p99 = Some(worst_p99.map_or(p, |w: f64| w.max(p)));
            }
            txs.push(IntervalTx {
                tps: done as f64 / secs,
                ok: c.ok,
                failed: c.failed + c.unknown,
                p50_ms: p50,
                p99_ms: p99,
            });
            self.writers.hlog.write(i, t_start, secs, h)?;
        }
        // The WAL rate between the readings that bound the interval, over their own time span.
        let wal = match (self.interval.wal_start, self.interval.wal_end) {
            (Some((t0, a)), Some((t1, b))) if t1 > t0 => {
                Some(b.saturating_sub(a) as f64 / t1.duration_since(t0).as_secs_f64())
            }
            _ => None,
        };
        self.writers.lag.flush()?;
        self.writers.intervals.write(&IntervalRow {
            t_s: t_end,
            interval_s: secs,
            txs,
            wal_bytes_per_s: wal,
        })?;
        self.progress.update(&ProgressLine {
            elapsed: now.duration_since(self.origin),
            tps: all_done as f64 / secs,
            p99_ms: worst_p99,
            errors,
            warmup: now < self.warmup_end,
            lag: self
                .run
                .standbys
                .iter()
                .zip(&self.latest_lag)
                .map(|(s, l)| (s.name.clone(), *l))
                .collect(),
        });
        for h in &mut self.interval.latency {
            h.reset();
        }
        for c in &mut self.interval.counts {
            *c = Counts::default();
        }
        // The next interval's WAL starts where this one ended.
        self.interval.wal_start = self.interval.wal_end;
        self.interval_start = now;
        self.run.measured_s = now.saturating_duration_since(self.warmup_end).as_secs_f64();
        Ok(())
    }
}
