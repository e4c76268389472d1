//! The recorder's state machine: records in, interval rows, lag rows, events and the running
//! totals out. No I/O and no clock of its own: the caller says when an interval ends.

use super::drills::DrillTracker;
use super::sink::{IntervalRow, IntervalTx, ProgressLine, Sink};
use super::stats::{
    new_histogram, CounterTotals, Counts, KeyOutcome, RecordedRun, TxStats, WalStats,
};
use super::steps::{StepAccum, StepStats};
use crate::messages::{
    Beat, Counter, EventRecord, Outcome, Record, ReplSample, StepMark, TxSample,
};
use anyhow::Result;
use hdrhistogram::Histogram;
use std::time::Duration;
use tokio::time::Instant;

/// The current one-second interval.
struct Interval {
    start: Instant,
    latency: Vec<Histogram<u64>>,
    counts: Vec<Counts>,
    /// (time, insert LSN) of the first and last WAL readings that bound this interval.
    wal_start: Option<(Instant, u64)>,
    wal_end: Option<(Instant, u64)>,
}

/// The previous sample's WAL readings: (time, insert LSN, pg_stat_wal records, fpi).
type WalReading = (Instant, u64, Option<i64>, Option<i64>);

/// What the recorder needs to know about the run.
pub struct RecorderSetup {
    /// Per transaction of the workload: whether it writes (its target is the primary).
    pub tx_writes: Vec<bool>,
    pub groups: usize,
    /// The run's nodes, the primary first (TxSample::node indexes them).
    pub nodes: Vec<String>,
    pub origin: Instant,
    pub warmup: Duration,
    /// `--lag-alert`: a standby whose time lag crosses it (and comes back) is an event.
    pub lag_alert: Option<Duration>,
    /// A sweep's steps' statistics go here as each step ends.
    pub steps: Option<tokio::sync::mpsc::UnboundedSender<StepStats>>,
    /// The load's writes go through a proxy or a multi-host string: a write lands wherever
    /// that leads, whichever node it is counted against.
    pub writes_via_access: bool,
}

pub struct Recorder {
    origin: Instant,
    warmup_end: Instant,
    run: RecordedRun,
    drills: DrillTracker,
    heartbeat: crate::record::heartbeat::HeartbeatTracker,
    interval: Interval,
    last_wal: Option<WalReading>,
    /// Latest (byte lag, time lag) per standby, for the progress line.
    latest_lag: Vec<(String, Option<(u64, f64)>)>,
    lag_alert: Option<f64>,
    /// Standbys over the lag alert now.
    alerting: Vec<String>,
    step: Option<StepAccum>,
    step_out: Option<tokio::sync::mpsc::UnboundedSender<StepStats>>,
}

impl Recorder {
    pub fn new(setup: RecorderSetup) -> Self {
        let tx_count = setup.tx_writes.len();
        let standbys: Vec<String> = setup.nodes.iter().skip(1).cloned().collect();
        let mut run = RecordedRun {
            tx: (0..tx_count).map(|_| TxStats::default()).collect(),
            schedule_lag: (0..setup.groups).map(|_| new_histogram()).collect(),
            warmup: Counts::default(),
            counters: CounterTotals::default(),
            wal: WalStats::default(),
            standbys: Vec::new(),
            measured_s: 0.0,
            events: 0,
            drills: Default::default(),
            keys: Vec::new(),
        };
        for s in &standbys {
            run.standby_mut(s);
        }
        Recorder {
            origin: setup.origin,
            warmup_end: setup.origin + setup.warmup,
            run,
            heartbeat: Default::default(),
            drills: DrillTracker::new(setup.nodes, setup.tx_writes)
                .writes_via_access(setup.writes_via_access),
            interval: Interval {
                start: setup.origin,
                latency: (0..tx_count).map(|_| new_histogram()).collect(),
                counts: vec![Counts::default(); tx_count],
                wal_start: None,
                wal_end: None,
            },
            last_wal: None,
            latest_lag: standbys.iter().map(|s| (s.clone(), None)).collect(),
            lag_alert: setup.lag_alert.map(|d| d.as_secs_f64()),
            alerting: Vec::new(),
            step: None,
            step_out: setup.steps,
        }
    }

    /// What was measured so far.
    pub fn run(&self) -> &RecordedRun {
        &self.run
    }

    pub fn into_run(self) -> RecordedRun {
        self.run
    }

    /// The drills as of `now`: what arrived after the last interval closed (a watch's
    /// verdict recorded as the run ends) counts too.
    pub fn settle_drills(&mut self, now: Instant) {
        self.run.drills = self.drills.summary(self.t_s(now));
    }

    fn t_s(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.origin).as_secs_f64()
    }

    /// Take one message.
    pub fn take(&mut self, msg: Record, sink: &mut dyn Sink) -> Result<()> {
        match msg {
            Record::Tx(s) => self.take_tx(s),
            Record::Event(e) => {
                self.run.events += 1;
                let t = self.t_s(e.at);
                self.drills.on_event(t, &e);
                sink.event(t, &e)?;
            }
            Record::Count(c) => self.take_count(c),
            Record::Sample(mut s) => {
                self.fill_heartbeat(&mut s);
                self.take_sample(&s, sink)?
            }
            Record::Beat(b) => self.take_beat(b),
            Record::Step(mark) => self.take_step(mark),
            Record::Batch(records) => {
                for r in records {
                    self.take(r, sink)?;
                }
            }
        }
        Ok(())
    }

    fn take_step(&mut self, mark: StepMark) {
        match mark {
            StepMark::Begin {
                group,
                offered_rate,
                at,
            } => self.step = Some(StepAccum::new(group, offered_rate, at, self.t_s(at))),
            StepMark::End { at } => {
                if let (Some(step), Some(out)) = (self.step.take(), &self.step_out) {
                    let _ = out.send(step.finish(self.t_s(at)));
                }
            }
        }
    }

    fn take_count(&mut self, c: Counter) {
        let t = &mut self.run.counters;
        match c {
            Counter::ConnectFailure => t.connect_failures += 1,
            Counter::Reconnect => t.reconnects += 1,
            Counter::RywChecked => t.ryw_checked += 1,
            Counter::RywWaited => t.ryw_waited += 1,
            Counter::RywFallback => t.ryw_fallback += 1,
        }
    }

    fn take_tx(&mut self, s: TxSample) {
        let i = s.tx as usize;
        if let Some(step) = self.step.as_mut() {
            step.take_tx(&s);
        }
        let end_s = self.t_s(s.started) + s.latency_us as f64 / 1e6;
        // When it was sent: the intended start plus the schedule lag (open model).
        let sent_s = self.t_s(s.started) + s.schedule_lag_us.unwrap_or(0) as f64 / 1e6;
        self.drills
            .on_tx(sent_s, end_s, i, s.node as usize, s.outcome);
        if let Some(seq) = s.key {
            self.run.keys.push(KeyOutcome {
                client: s.client,
                seq,
                acknowledged: s.outcome == Outcome::Ok,
                unknown: s.outcome == Outcome::Unknown,
                t_s: end_s,
            });
        }
        let retries = u64::from(s.retries);
        count(&mut self.interval.counts[i], s.outcome, retries);
        if s.outcome == Outcome::Ok {
            self.interval.latency[i].saturating_record(s.latency_us.max(1));
        }
        if s.started < self.warmup_end {
            count(&mut self.run.warmup, s.outcome, retries);
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
        t.retries += retries;
        t.retried += u64::from(retries > 0);
        if let Some(code) = s.sqlstate {
            *t.by_sqlstate.entry(code).or_default() += 1;
        }
        if let Some(lag) = s.schedule_lag_us {
            self.run.schedule_lag[s.group as usize].saturating_record(lag);
        }
    }

    fn take_beat(&mut self, b: Beat) {
        match b {
            Beat::Committed { k, at } => {
                let t = self.t_s(at);
                self.heartbeat.committed(k, t);
                if at >= self.warmup_end {
                    self.run.wal.heartbeats += 1;
                }
            }
            Beat::Seen { node, k, at } => {
                let t = self.t_s(at);
                let lags = self.heartbeat.seen(&node, k, t);
                if at >= self.warmup_end && self.run.has_standby(&node) {
                    let st = self.run.standby_mut(&node);
                    for l in lags {
                        st.heartbeat_lag_us.saturating_record((l * 1e6) as u64);
                    }
                }
            }
            Beat::WalPerBeat(w) => self.run.wal.heartbeat_wal_per_beat = Some(w),
        }
    }

    /// Each standby's heartbeat lag at the sample's time.
    fn fill_heartbeat(&self, s: &mut ReplSample) {
        let t = self.t_s(s.at);
        for sb in s
            .standbys
            .iter_mut()
            .filter(|sb| sb.in_recovery == Some(true))
        {
            sb.heartbeat_lag_s = self.heartbeat.current(&sb.node, t);
        }
    }

    fn take_sample(&mut self, s: &ReplSample, sink: &mut dyn Sink) -> Result<()> {
        let measured = s.at >= self.warmup_end;
        self.take_wal(s, measured);
        let t = self.t_s(s.at);
        if let Some(step) = self.step.as_mut() {
            step.take_sample(t, s);
        }
        sink.sample(t, s)?;
        self.check_lag_alerts(s, sink)?;
        if let Some(nodes) = self.drills.on_sample(t, s) {
            self.run.events += 1;
            let detail = format!(
                "{} nodes accept writes at once ({}): each takes writes the other does not have",
                nodes.len(),
                nodes.join(", ")
            );
            sink.event(
                t,
                &event(s.at, "split_brain", &nodes[1..].join(" "), &detail),
            )?;
        }
        for sb in &s.standbys {
            sink.lag(t, sb)?;
            let is_standby = sb.in_recovery == Some(true);
            let latest = match (is_standby, sb.lag_bytes, sb.lag_s) {
                (true, Some(b), Some(l)) => Some((b, l)),
                _ => None,
            };
            match self.latest_lag.iter_mut().find(|(n, _)| *n == sb.node) {
                Some(entry) => entry.1 = latest,
                None if is_standby => self.latest_lag.push((sb.node.clone(), latest)),
                None => {}
            }
            // A node counts as a standby from the start, or once it answers as one (a rejoined
            // former primary); a failed primary that never came back is only in lag.csv.
            if !measured || !(is_standby || self.run.has_standby(&sb.node)) {
                continue;
            }
            let st = self.run.standby_mut(&sb.node);
            st.samples += 1;
            if !sb.up || !is_standby {
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
        // The primary of the moment is no standby: it leaves the progress line.
        self.latest_lag.retain(|(n, _)| *n != s.primary);
        Ok(())
    }

    /// A standby whose time lag crosses the alert threshold is an event (`lag_alert`), and
    /// one when it comes back under it (`lag_ok`).
    fn check_lag_alerts(&mut self, s: &ReplSample, sink: &mut dyn Sink) -> Result<()> {
        let Some(limit) = self.lag_alert else {
            return Ok(());
        };
        for sb in &s.standbys {
            let Some(lag) = sb.lag_s.filter(|_| sb.in_recovery == Some(true)) else {
                continue;
            };
            let was = self.alerting.iter().position(|n| *n == sb.node);
            let (kind, detail) = match (lag > limit, was) {
                (true, None) => {
                    self.alerting.push(sb.node.clone());
                    ("lag_alert", format!("lag {lag:.3} s is over {limit} s"))
                }
                (false, Some(i)) => {
                    self.alerting.remove(i);
                    ("lag_ok", format!("lag {lag:.3} s is back under {limit} s"))
                }
                _ => continue,
            };
            self.run.events += 1;
            sink.event(self.t_s(s.at), &event(s.at, kind, &sb.node, &detail))?;
        }
        Ok(())
    }

    fn take_wal(&mut self, s: &ReplSample, measured: bool) {
        let Some(lsn) = s.insert_lsn else { return };
        if s.timeline_changed {
            // A new primary: its positions do not continue the old one's rate.
            self.interval.wal_start = Some((s.at, lsn));
            self.last_wal = None;
        }
        self.interval.wal_start.get_or_insert((s.at, lsn));
        self.interval.wal_end = Some((s.at, lsn));
        if let Some((at0, lsn0, rec0, fpi0)) = self.last_wal {
            let secs = s.at.saturating_duration_since(at0).as_secs_f64();
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

    /// True when the current interval holds transactions or is longer than `min`.
    pub fn interval_worth_closing(&self, now: Instant, min: Duration) -> bool {
        let pending = self
            .interval
            .counts
            .iter()
            .any(|c| c.ok + c.failed + c.unknown > 0);
        pending || now.saturating_duration_since(self.interval.start) > min
    }

    /// Close the current interval at `now`: its row, its histograms and a progress line go to
    /// the sink; the next interval starts.
    pub fn close_interval(&mut self, now: Instant, sink: &mut dyn Sink) -> Result<()> {
        let secs = now
            .saturating_duration_since(self.interval.start)
            .as_secs_f64()
            .max(1e-3);
        let mut txs = Vec::with_capacity(self.interval.counts.len());
        let (mut ok, mut errors) = (0u64, 0u64);
        let mut worst_p99: Option<f64> = None;
        for (c, h) in self.interval.counts.iter().zip(&self.interval.latency) {
            ok += c.ok;
            errors += c.failed + c.unknown;
            let q = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0);
            let p99 = q(0.99);
            if let Some(p) = p99 {
                worst_p99 = Some(worst_p99.map_or(p, |w: f64| w.max(p)));
            }
            txs.push(IntervalTx {
                tps: c.ok as f64 / secs,
                ok: c.ok,
                failed: c.failed,
                unknown: c.unknown,
                retries: c.retries,
                p50_ms: q(0.5),
                p99_ms: p99,
            });
        }
        // The WAL rate between the readings that bound the interval, over their own time span.
        let wal_bytes_per_s = match (self.interval.wal_start, self.interval.wal_end) {
            (Some((t0, a)), Some((t1, b))) if t1 > t0 => {
                Some(b.saturating_sub(a) as f64 / t1.duration_since(t0).as_secs_f64())
            }
            _ => None,
        };
        let row = IntervalRow {
            t_s: self.t_s(now),
            start_s: self.t_s(self.interval.start),
            interval_s: secs,
            txs,
            wal_bytes_per_s,
        };
        let progress = ProgressLine {
            elapsed: now.saturating_duration_since(self.origin),
            tps: ok as f64 / secs,
            p99_ms: worst_p99,
            errors,
            warmup: now < self.warmup_end,
            lag: self.latest_lag.clone(),
        };
        sink.interval(&row, &self.interval.latency, &progress)?;
        for h in &mut self.interval.latency {
            h.reset();
        }
        self.interval.counts.fill(Counts::default());
        // The next interval's WAL starts where this one ended.
        self.interval.wal_start = self.interval.wal_end;
        self.interval.start = now;
        self.run.measured_s = now.saturating_duration_since(self.warmup_end).as_secs_f64();
        self.run.drills = self.drills.summary(self.t_s(now));
        Ok(())
    }
}

fn count(c: &mut Counts, outcome: Outcome, retries: u64) {
    match outcome {
        Outcome::Ok => c.ok += 1,
        Outcome::Failed => c.failed += 1,
        Outcome::Unknown => c.unknown += 1,
    }
    c.retries += retries;
}

/// An event the recorder did not get from the load: for tests and for the session's own notes.
pub fn event(at: Instant, kind: &str, node: &str, detail: &str) -> EventRecord {
    EventRecord {
        at,
        kind: kind.into(),
        node: node.into(),
        detail: detail.into(),
        took: None,
        undo: false,
    }
}
