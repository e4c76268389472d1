//! What the drills measured (DESIGN section 7), worked out from the same records the recorder
//! takes: the drill timeline's events, the sampler's samples and the transactions' outcomes.
//! A state machine like the recorder: no I/O, no clock.

use crate::messages::{EventRecord, Outcome, ReplSample};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// summary.json `drills`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Drills {
    /// Per standby: its (last) network interruption or stop, and the catch-up after it.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub interruption: IndexMap<String, Interruption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<Switchover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_brain: Option<SplitBrainSeen>,
    /// The runbook's timeline: kill, detection, promotion, first write, rejoin, failback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Milestone>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interruption {
    /// `pause_link`, `cut_link` or `kill`.
    pub action: String,
    pub started_s: f64,
    /// None: the run ended first.
    pub ended_s: Option<f64>,
    pub outage_s: f64,
    /// WAL the primary wrote during the outage.
    pub wal_accumulated_bytes: Option<u64>,
    pub peak_slot_retained_bytes: Option<u64>,
    /// Size of the primary's pg_wal directory.
    pub peak_pg_wal_bytes: Option<u64>,
    /// The slot's wal_status as it changed, e.g. reserved, extended, unreserved, lost.
    pub wal_status_seen: Vec<String>,
    /// The slot was lost: the standby must be rebuilt (`cluster rebuild`).
    pub slot_lost: bool,
    /// From the link's return until the standby replayed the primary's position at that moment.
    pub catch_up_s: Option<f64>,
    /// From the link's return until the standby had reached the moving head again (its time
    /// lag under 1 s): what `predicted_catch_up_s` models.
    #[serde(default)]
    pub caught_up_with_head_s: Option<f64>,
    pub catch_up_mb_per_s: Option<f64>,
    /// The standby's replay rate over the first half of its catch-up.
    pub replay_mb_per_s: Option<f64>,
    /// The primary's WAL rate during the outage.
    pub wal_mb_per_s: Option<f64>,
    /// wal_accumulated_bytes / (replay rate - WAL rate).
    pub predicted_catch_up_s: Option<f64>,
}

/// What the keys of a failover drill say (filled after the run from `pgbench_repl_keys`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyCounts {
    /// Writes whose COMMIT succeeded.
    pub acknowledged: u64,
    /// Acknowledged and missing on the primary after the run (None: no primary answered
    /// after the run, so nobody could say).
    pub lost: Option<u64>,
    /// The time the lost writes cover (the RPO in seconds), with its ends.
    pub lost_span_s: Option<f64>,
    pub lost_first_s: Option<f64>,
    pub lost_last_s: Option<f64>,
    /// The connection broke during their COMMIT.
    pub unknown: u64,
    /// Of those, the ones whose key is on the primary after the run.
    pub unknown_committed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failover {
    pub killed: String,
    pub killed_at_s: f64,
    /// Who promoted: `pgbench-repl` (the workload's promote event), an orchestrator
    /// (`pg_auto_failover`, `patroni`), or `observed` (a `[cluster]`'s nodes watched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The orchestrator's timeouts in force.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub settings: IndexMap<String, String>,
    /// The setting that bounds detection (node_considered_unhealthy_timeout, ttl) and its
    /// value in seconds, printed beside `detection_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_setting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_setting_s: Option<f64>,
    pub promoted: Option<String>,
    /// No promotion happened before the run ended: the orchestrator's own account of why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_promotion_reason: Option<String>,
    /// How long the run waited for a promotion that did not come.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_s: Option<f64>,
    /// The new primary's timeline.
    pub timeline: Option<u32>,
    /// From the kill until the first write committed on the new primary.
    pub rto_s: Option<f64>,
    /// From the kill until the promotion began (the orchestrator's detection).
    pub detection_s: Option<f64>,
    /// The promotion itself.
    pub promotion_s: Option<f64>,
    /// From the end of the promotion until the first write committed on the new primary.
    pub reconnect_s: Option<f64>,
    #[serde(flatten)]
    pub keys: KeyCounts,
    /// Reads that succeeded (on the standbys) from the kill to the end of the promotion.
    pub reads_during_outage: u64,
    /// Writes that failed or ended unknown from the kill to the first write on the new
    /// primary.
    pub writes_failed_during_outage: u64,
}

/// summary.json `drills.switchover`: a planned switchover asked of the orchestrator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Switchover {
    pub from: String,
    pub to: String,
    pub started_s: f64,
    /// How long the orchestrator took to say it was done.
    pub took_s: f64,
    /// The longest time without a committed write from the start of the switchover until
    /// the first write committed on the new primary.
    pub write_gap_s: Option<f64>,
    /// Acknowledged writes missing on the primary after the run (its keys; None: no
    /// primary answered after the run).
    pub lost: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SplitBrainSeen {
    pub detected_at_s: f64,
    /// Every node seen out of recovery at once.
    pub nodes: Vec<String>,
    /// WAL each side wrote after the split was seen: the writes the other side lacks.
    pub wal_bytes_since: IndexMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    /// kill, detection, promotion, first write, rejoin, failback, ...
    pub what: String,
    pub node: String,
    pub t_s: f64,
    pub duration_s: Option<f64>,
}

/// One standby's outage as it is being followed.
#[derive(Debug, Default)]
struct Outage {
    action: String,
    start: f64,
    end: Option<f64>,
    insert_at_start: Option<u64>,
    insert_at_end: Option<u64>,
    /// The primary's position when the link came back: caught up once replayed.
    target: Option<u64>,
    /// (t, replay LSN) from the return on.
    trace: Vec<(f64, u64)>,
    caught_at: Option<f64>,
    /// When its time lag was back under HEAD_LAG_S.
    head_at: Option<f64>,
    peak_slot: Option<u64>,
    peak_wal: Option<u64>,
    statuses: Vec<String>,
}

#[derive(Debug, Default)]
struct FailoverState {
    out: Failover,
    promote_began: Option<f64>,
    promoted_at: Option<f64>,
    first_write: Option<f64>,
    /// When the kill had done its work: the old primary takes nothing after it.
    killed_done: f64,
    /// When writes failed (or ended unknown) from the kill on: counted up to the first write.
    failed_writes: Vec<f64>,
    /// Reads that succeeded, per 100 ms from the kill on: counted up to the promotion's end.
    read_buckets: Vec<u32>,
}

/// A transaction as the tracker remembers it for a moment: the records of a drill's own
/// events (a kill, a promotion) reach it after the transactions that ended around them.
#[derive(Debug, Clone, Copy)]
struct TxMark {
    sent_s: f64,
    end_s: f64,
    write: bool,
    node: usize,
    outcome: Outcome,
}

/// How far back the tracker remembers transactions.
const RECENT_S: f64 = 3.0;

/// The milliseconds of the run in which a write committed (one bit each: a day's run takes
/// 11 MB, an hour's 450 kB), so a gap between commits can be measured after the fact, when
/// samples arrived out of order and before the event that asks for it was recorded.
#[derive(Debug, Default)]
struct WriteTimes {
    bits: Vec<u64>,
}

impl WriteTimes {
    fn set(&mut self, t_s: f64) {
        if !(0.0..86_400.0 * 7.0).contains(&t_s) {
            return;
        }
        let ms = (t_s * 1000.0) as usize;
        if self.bits.len() <= ms / 64 {
            self.bits.resize(ms / 64 + 1, 0);
        }
        self.bits[ms / 64] |= 1 << (ms % 64);
    }

    fn has(&self, ms: usize) -> bool {
        self.bits
            .get(ms / 64)
            .is_some_and(|w| w & (1 << (ms % 64)) != 0)
    }

    fn last_ms(&self) -> usize {
        self.bits.len() * 64
    }

    /// The longest time without a commit, from the last commit at or before `from_s` to the
    /// first at or after `until_s` (None when there is no commit after `until_s`).
    fn longest_gap(&self, from_s: f64, until_s: f64) -> Option<f64> {
        let from = (from_s.max(0.0) * 1000.0) as usize;
        let until = (until_s.max(0.0) * 1000.0) as usize;
        let start = (0..=from.min(self.last_ms()))
            .rev()
            .find(|ms| self.has(*ms))
            .unwrap_or(from);
        let end = (until..self.last_ms()).find(|ms| self.has(*ms))?;
        let (mut prev, mut longest) = (start, 0);
        for ms in start..=end {
            if self.has(ms) {
                longest = longest.max(ms - prev);
                prev = ms;
            }
        }
        Some(longest as f64 / 1000.0)
    }
}

/// The tracker.
pub struct DrillTracker {
    /// Node names by index (TxSample::node).
    nodes: Vec<String>,
    /// Per transaction: whether it writes.
    writes: Vec<bool>,
    primary: String,
    outages: IndexMap<String, Outage>,
    failover: Option<FailoverState>,
    switchover: Option<Switchover>,
    commits: WriteTimes,
    recent: std::collections::VecDeque<TxMark>,
    writes_via_access: bool,
    split: Option<(SplitBrainSeen, IndexMap<String, u64>)>,
    milestones: Vec<Milestone>,
    last_timeline: Option<u32>,
}

fn take_max(slot: &mut Option<u64>, v: Option<u64>) {
    if let Some(v) = v {
        *slot = Some(slot.map_or(v, |m| m.max(v)));
    }
}

impl DrillTracker {
    pub fn new(nodes: Vec<String>, writes: Vec<bool>) -> Self {
        DrillTracker {
            primary: nodes.first().cloned().unwrap_or_default(),
            nodes,
            writes,
            outages: IndexMap::new(),
            failover: None,
            switchover: None,
            commits: WriteTimes::default(),
            recent: std::collections::VecDeque::new(),
            writes_via_access: false,
            split: None,
            milestones: Vec::new(),
            last_timeline: None,
        }
    }

    /// The load's writes go through an access endpoint (a proxy, a multi-host string): after
    /// a kill of the primary, any committed write is on the new primary, whichever node it
    /// is counted against.
    pub fn writes_via_access(mut self, yes: bool) -> Self {
        self.writes_via_access = yes;
        self
    }

    fn milestone(&mut self, what: &str, node: &str, t_s: f64, duration_s: Option<f64>) {
        self.milestones.push(Milestone {
            what: what.into(),
            node: node.into(),
            t_s,
            duration_s,
        });
    }

    /// A drill action finished (`t_s`: when it began). Failed actions change nothing.
    pub fn on_event(&mut self, t_s: f64, e: &EventRecord) {
        let Some(took) = e.took.map(|d| d.as_secs_f64()) else {
            return;
        };
        match e.kind.as_str() {
            "promotion_seen" => return self.promotion_seen(&e.node, t_s),
            "no_promotion" => {
                if let Some(f) = self.failover.as_mut().filter(|f| f.out.promoted.is_none()) {
                    f.out.no_promotion_reason = Some(e.detail.clone());
                    f.out.waited_s = Some(round3(took));
                }
                return;
            }
            "switchover" => return self.switchover(&e.node, t_s, took),
            _ => {}
        }
        let done = t_s + took;
        match e.kind.as_str() {
            "pause_link" | "cut_link" => self.outage_starts(&e.node, &e.kind, done),
            "kill" if e.node != self.primary => self.outage_starts(&e.node, "kill", done),
            "resume_link" | "heal_link" | "start" => {
                if let Some(o) = self.outages.get_mut(&e.node).filter(|o| o.end.is_none()) {
                    o.end = Some(done);
                }
            }
            "kill" if self.failover.is_some() => {
                // The primary of a failover killed again: the failback's switch.
                self.milestone("kill", &e.node, t_s, Some(took));
            }
            "kill" => {
                // The crash is the immediate stop's signal, at the start of the action.
                self.milestone("kill", &e.node, t_s, Some(took));
                self.failover = Some(FailoverState {
                    out: Failover {
                        killed: e.node.clone(),
                        killed_at_s: round3(t_s),
                        ..Default::default()
                    },
                    killed_done: t_s + took,
                    ..Default::default()
                });
                // Transactions that ended after the crash reached the tracker before its
                // event did.
                let recent: Vec<TxMark> = self.recent.iter().copied().collect();
                for m in recent.into_iter().filter(|m| m.end_s >= t_s) {
                    self.failover_tx(m);
                }
            }
            "promote" => self.promoted(&e.node, t_s, took),
            "rejoin" | "rebuild" => self.milestone(&e.kind, &e.node, t_s, Some(took)),
            _ => {}
        }
    }

    fn outage_starts(&mut self, node: &str, action: &str, at: f64) {
        // A new outage of the same node replaces the one before (the last one is reported).
        self.outages.insert(
            node.to_string(),
            Outage {
                action: action.into(),
                start: at,
                ..Default::default()
            },
        );
    }

    /// A promotion seen without a record of when it began: no detection or promotion time.
    fn promotion_seen(&mut self, node: &str, at: f64) {
        if let Some(f) = self.failover.as_mut().filter(|f| f.out.promoted.is_none()) {
            f.out.promoted = Some(node.to_string());
            f.promote_began = Some(at);
            f.promoted_at = Some(at);
            self.milestone("promotion seen", node, at, None);
            let recent: Vec<TxMark> = self.recent.iter().copied().collect();
            for m in recent {
                self.check_first_write(m);
            }
        }
    }

    fn switchover(&mut self, to: &str, began: f64, took: f64) {
        self.switchover = Some(Switchover {
            from: self.primary.clone(),
            to: to.to_string(),
            started_s: round3(began),
            took_s: round3(took),
            ..Default::default()
        });
        self.milestone("switchover", to, began, Some(took));
    }

    fn promoted(&mut self, node: &str, began: f64, took: f64) {
        let killed_at = match self.failover.as_mut() {
            Some(f) if f.out.promoted.is_none() => {
                f.out.promoted = Some(node.to_string());
                f.promote_began = Some(began);
                f.promoted_at = Some(began + took);
                f.out.detection_s = Some(round3(began - f.out.killed_at_s));
                f.out.promotion_s = Some(round3(took));
                Some(f.out.killed_at_s)
            }
            Some(_) => return self.milestone("failback", node, began, Some(took)),
            None => None,
        };
        if let Some(k) = killed_at {
            self.milestone("detection", node, k, Some(began - k));
            // Writes on the new primary may have reached the tracker before this event.
            let recent: Vec<TxMark> = self.recent.iter().copied().collect();
            for m in recent {
                self.check_first_write(m);
            }
        }
        self.milestone("promotion", node, began, Some(took));
    }

    /// A finished transaction: `sent_s` when it was sent (its first try began), `end_s` when
    /// it ended.
    pub fn on_tx(&mut self, sent_s: f64, end_s: f64, tx: usize, node: usize, outcome: Outcome) {
        let write = self.writes.get(tx).copied().unwrap_or(false);
        if write && outcome == Outcome::Ok {
            // After the orchestrator says the switchover is done, a commit is on the new
            // primary (the old one has been demoted).
            self.commits.set(end_s);
        }
        let m = TxMark {
            sent_s,
            end_s,
            write,
            node,
            outcome,
        };
        self.remember(m);
        self.failover_tx(m);
    }

    fn remember(&mut self, m: TxMark) {
        self.recent.push_back(m);
        while self
            .recent
            .front()
            .is_some_and(|f| f.end_s < m.end_s - RECENT_S)
        {
            self.recent.pop_front();
        }
    }

    /// A transaction during a failover: the outage's counts and the first write on the new
    /// primary.
    fn failover_tx(&mut self, m: TxMark) {
        let Some(f) = self.failover.as_mut() else {
            return;
        };
        if m.end_s >= f.out.killed_at_s {
            match (m.write, m.outcome) {
                (false, Outcome::Ok) => {
                    let b = ((m.end_s - f.out.killed_at_s) * 10.0) as usize;
                    if b < 86_400 * 10 {
                        if f.read_buckets.len() <= b {
                            f.read_buckets.resize(b + 1, 0);
                        }
                        f.read_buckets[b] += 1;
                    }
                }
                (true, Outcome::Failed | Outcome::Unknown) => f.failed_writes.push(m.end_s),
                _ => {}
            }
        }
        self.check_first_write(m);
    }

    fn check_first_write(&mut self, m: TxMark) {
        let via_access = self.writes_via_access;
        let Some(f) = self.failover.as_mut() else {
            return;
        };
        let on = self.nodes.get(m.node).map(String::as_str).unwrap_or("");
        let promoted = f.out.promoted.as_deref();
        // Through an access endpoint, a write sent after the kill had done its work committed
        // on the new primary (the old one was dead), whether or not the run has seen the
        // promotion yet. (One sent before may have committed on the old primary an instant
        // before it died, its answer read after.)
        let on_new_primary = if via_access {
            m.sent_s >= f.killed_done
        } else {
            promoted == Some(on) && f.promoted_at.is_some_and(|p| m.end_s >= p)
        };
        let earlier = f.first_write.is_none_or(|w| m.end_s < w);
        if earlier && m.write && m.outcome == Outcome::Ok && on_new_primary {
            f.first_write = Some(m.end_s);
        }
    }

    /// One sample (`t_s`: its time). Returns the nodes of a split brain the first time one is
    /// seen, so that the recorder can say so.
    pub fn on_sample(&mut self, t_s: f64, s: &ReplSample) -> Option<Vec<String>> {
        self.primary = s.primary.clone();
        if s.timeline.is_some() {
            self.last_timeline = s.timeline;
        }
        if let Some(f) = self.failover.as_mut() {
            if f.out.promoted.as_deref() == Some(s.primary.as_str()) && s.timeline.is_some() {
                f.out.timeline = s.timeline;
            }
        }
        for (node, o) in self.outages.iter_mut() {
            follow_outage(o, t_s, s, node);
        }
        self.follow_split(t_s, s)
    }

    fn follow_split(&mut self, t_s: f64, s: &ReplSample) -> Option<Vec<String>> {
        let others: Vec<&crate::messages::StandbySample> = s
            .standbys
            .iter()
            .filter(|sb| sb.up && sb.in_recovery == Some(false))
            .collect();
        if let Some((seen, base)) = self.split.as_mut() {
            let mut positions = vec![(s.primary.as_str(), s.insert_lsn)];
            positions.extend(others.iter().map(|o| (o.node.as_str(), o.current_lsn)));
            for (node, lsn) in positions {
                if let (Some(b), Some(l)) = (base.get(node), lsn) {
                    seen.wal_bytes_since
                        .insert(node.to_string(), l.saturating_sub(*b));
                }
            }
            return None;
        }
        if others.is_empty() || !s.primary_up {
            return None;
        }
        let mut nodes = vec![s.primary.clone()];
        let mut base = IndexMap::new();
        if let Some(l) = s.insert_lsn {
            base.insert(s.primary.clone(), l);
        }
        for o in &others {
            nodes.push(o.node.clone());
            if let Some(l) = o.current_lsn {
                base.insert(o.node.clone(), l);
            }
        }
        let seen = SplitBrainSeen {
            detected_at_s: round3(t_s),
            nodes: nodes.clone(),
            wal_bytes_since: nodes.iter().map(|n| (n.clone(), 0)).collect(),
        };
        self.split = Some((seen, base));
        Some(nodes)
    }

    /// The drills' results at the end of the run (`end_s`).
    pub fn summary(&self, end_s: f64) -> Drills {
        let interruption = self
            .outages
            .iter()
            .map(|(n, o)| (n.clone(), interruption(o, end_s)))
            .collect();
        let failover = self.failover.as_ref().map(|f| {
            let mut out = f.out.clone();
            let first = f.first_write.unwrap_or(f64::INFINITY);
            out.writes_failed_during_outage =
                f.failed_writes.iter().filter(|t| **t <= first).count() as u64;
            let promoted_at = f.promoted_at.map(|p| p.min(first)).unwrap_or(f64::INFINITY);
            out.reads_during_outage = f
                .read_buckets
                .iter()
                .enumerate()
                .take_while(|(b, _)| out.killed_at_s + *b as f64 / 10.0 < promoted_at)
                .map(|(_, n)| u64::from(*n))
                .sum();
            if let Some(first) = f.first_write {
                out.rto_s = Some(round3(first - out.killed_at_s));
                // Writes through a proxy may reach the new primary before the run saw it
                // promoted: the promotion was over by then.
                let promoted_at = f.promoted_at.map(|p| p.min(first));
                if let (Some(p), Some(b)) = (promoted_at, f.promote_began) {
                    if out.promotion_s.is_some() {
                        out.promotion_s = Some(round3((p - b).max(0.0)));
                    }
                }
                out.reconnect_s = promoted_at.map(|p| round3(first - p));
            }
            if out.timeline.is_none() && out.promoted.is_some() {
                out.timeline = self.last_timeline;
            }
            out
        });
        let mut timeline = self.milestones.clone();
        if let Some(first) = self.failover.as_ref().and_then(|f| f.first_write) {
            let node = failover
                .as_ref()
                .and_then(|f| f.promoted.clone())
                .unwrap_or_default();
            timeline.push(Milestone {
                what: "first write".into(),
                node,
                t_s: first,
                duration_s: None,
            });
        }
        // The promotion's step as long as `promotion_s` says (cut short by a first write
        // through a proxy).
        if let Some(f) = &failover {
            let step = timeline
                .iter_mut()
                .find(|m| m.what == "promotion" && f.promoted.as_deref() == Some(m.node.as_str()));
            if let (Some(m), Some(p)) = (step, f.promotion_s) {
                m.duration_s = Some(p);
            }
            // A write through a proxy may come before the run knew which node took over.
            if let Some(p) = &f.promoted {
                for m in timeline.iter_mut().filter(|m| m.what == "first write") {
                    m.node = p.clone();
                }
            }
        }
        for m in &mut timeline {
            m.t_s = round3(m.t_s);
            m.duration_s = m.duration_s.map(round3);
        }
        // Stable: steps at the same millisecond stay in the order they happened.
        timeline.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
        let switchover = self.switchover.as_ref().map(|s| Switchover {
            write_gap_s: self
                .commits
                .longest_gap(s.started_s, s.started_s + s.took_s)
                .map(round3),
            ..s.clone()
        });
        Drills {
            interruption,
            failover,
            switchover,
            split_brain: self.split.as_ref().map(|(s, _)| s.clone()),
            timeline,
        }
    }
}

/// Follow one standby's outage through a sample.
fn follow_outage(o: &mut Outage, t_s: f64, s: &ReplSample, node: &str) {
    if t_s < o.start || (o.caught_at.is_some() && o.head_at.is_some()) {
        return;
    }
    let sb = s.standbys.iter().find(|x| x.node == node);
    if o.insert_at_start.is_none() {
        o.insert_at_start = s.insert_lsn;
    }
    take_max(&mut o.peak_slot, sb.and_then(|x| x.slot_retained_bytes));
    take_max(&mut o.peak_wal, s.pg_wal_bytes);
    if let Some(status) = sb.and_then(|x| x.wal_status.clone()) {
        if o.statuses.last() != Some(&status) {
            o.statuses.push(status);
        }
    }
    let Some(end) = o.end.filter(|e| t_s >= *e) else {
        return;
    };
    if o.target.is_none() {
        o.target = s.current_lsn;
        o.insert_at_end = s.insert_lsn;
    }
    if o.head_at.is_none() && sb.and_then(|x| x.lag_s).is_some_and(|l| l < HEAD_LAG_S) {
        o.head_at = Some(t_s);
    }
    if o.caught_at.is_some() {
        return;
    }
    if let (Some(target), Some(replay)) = (o.target, sb.and_then(|x| x.replay_lsn)) {
        o.trace.push((t_s, replay));
        if replay >= target && t_s >= end {
            o.caught_at = Some(t_s);
        }
    }
}

/// A standby whose time lag is under this has caught up with the moving head.
const HEAD_LAG_S: f64 = 1.0;

fn interruption(o: &Outage, end_s: f64) -> Interruption {
    let outage_s = o.end.unwrap_or(end_s) - o.start;
    let accumulated = match (o.insert_at_start, o.insert_at_end) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let catch_up_s = match (o.end, o.caught_at) {
        (Some(e), Some(c)) => Some(c - e),
        _ => None,
    };
    let replay_rate = replay_rate(&o.trace, catch_up_s);
    let wal_rate = accumulated
        .filter(|_| outage_s > 0.0)
        .map(|a| a as f64 / outage_s);
    let predicted = match (accumulated, replay_rate, wal_rate) {
        (Some(a), Some(r), Some(w)) if r > w => Some(a as f64 / (r - w)),
        _ => None,
    };
    let catch_up_rate = match (o.trace.first(), o.trace.last(), catch_up_s) {
        (Some(a), Some(b), Some(c)) if c > 0.0 => Some((b.1.saturating_sub(a.1)) as f64 / c),
        _ => None,
    };
    Interruption {
        action: o.action.clone(),
        started_s: round3(o.start),
        ended_s: o.end.map(round3),
        outage_s: round3(outage_s),
        wal_accumulated_bytes: accumulated,
        peak_slot_retained_bytes: o.peak_slot,
        peak_pg_wal_bytes: o.peak_wal,
        wal_status_seen: o.statuses.clone(),
        slot_lost: o.statuses.iter().any(|s| s == "lost"),
        catch_up_s: catch_up_s.map(round3),
        caught_up_with_head_s: match (o.end, o.head_at) {
            (Some(e), Some(h)) => Some(round3(h - e)),
            _ => None,
        },
        catch_up_mb_per_s: catch_up_rate.map(|r| round3(r / 1e6)),
        replay_mb_per_s: replay_rate.map(|r| round3(r / 1e6)),
        wal_mb_per_s: wal_rate.map(|r| round3(r / 1e6)),
        predicted_catch_up_s: predicted.map(round3),
    }
}

/// The replay rate over the first half of the catch-up (at least two samples apart).
fn replay_rate(trace: &[(f64, u64)], catch_up_s: Option<f64>) -> Option<f64> {
    let &(t0, r0) = trace.first()?;
    let half = t0 + catch_up_s.unwrap_or(f64::INFINITY) / 2.0;
    let &(t1, r1) = trace
        .iter()
        .skip(1)
        .find(|(t, _)| *t >= half)
        .or_else(|| trace.get(1))?;
    (t1 > t0).then(|| r1.saturating_sub(r0) as f64 / (t1 - t0))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests;
