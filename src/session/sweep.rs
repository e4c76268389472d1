//! A `[sweep]` (DESIGN section 11): within one run, the swept group's offered rate is stepped
//! (a list, or `auto`: doubling, then bisection), each step starting once every standby has
//! caught up; each step's statistics come back from the recorder and are judged at once; then
//! a replay probe at the max sustainable rate measures how fast the standbys catch up.

use crate::cluster::Lab;
use crate::exec::RateControl;
use crate::link::protocol::Request;
use crate::messages::{EventRecord, Record, StepMark};
use crate::pg::Endpoint;
use crate::record::capacity::{judge, next_auto_rate, verdict, SweepStep};
use crate::record::StepStats;
use crate::topology::Topology;
use crate::workload::Sweep;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the sweep's steps need.
pub struct SweepRun {
    pub sweep: Sweep,
    pub control: RateControl,
    pub records: mpsc::Sender<Record>,
    pub steps: mpsc::UnboundedReceiver<StepStats>,
    pub topology: Arc<Topology>,
    pub lab: Option<Lab>,
    pub warmup: Duration,
    /// The judged steps so far (kept when the run is interrupted).
    pub judged: Arc<std::sync::Mutex<Vec<SweepStep>>>,
}

impl SweepRun {
    /// Run every step; the judged steps land in `judged` as they come.
    pub async fn run(mut self) {
        if !self.warmup.is_zero() {
            // The warmup runs the swept group at the first rate, left out of every step.
            let first = self
                .sweep
                .rates
                .first()
                .copied()
                .unwrap_or(self.sweep.start);
            self.control.set_rate(self.sweep.group, first);
            tokio::time::sleep(self.warmup).await;
            self.control.hold(self.sweep.group);
        }
        let mut judged: Vec<SweepStep> = Vec::new();
        let mut listed = self.sweep.rates.clone().into_iter();
        loop {
            let rate = if self.sweep.rates.is_empty() {
                next_auto_rate(&judged, self.sweep.start, self.sweep.max_rate)
            } else {
                listed.next()
            };
            let Some(rate) = rate else { break };
            let Some(stats) = self.step(rate).await else {
                break;
            };
            let step = judge(stats, &self.sweep.slo);
            let verdict = if step.met_slo {
                "met the SLO".to_string()
            } else {
                step.failed_checks.join("; ")
            };
            self.note(
                "sweep_step",
                &format!(
                    "{rate} tx/s offered, {} achieved: {verdict}",
                    step.stats.achieved_tps
                ),
            )
            .await;
            judged.push(step.clone());
            self.judged
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(step);
        }
        let (max, _) = verdict(&judged);
        if let (Some(rate), Some(lab)) = (max, self.lab.clone()) {
            if !self.sweep.probe.is_zero() {
                self.probe(rate, &lab).await;
            }
        }
    }

    /// One step at `rate`; None when the recorder is gone (the run is ending).
    async fn step(&mut self, rate: f64) -> Option<StepStats> {
        self.wait_caught_up().await;
        let group = self.sweep.group;
        let at = Instant::now();
        let begin = StepMark::Begin {
            group: group as u16,
            offered_rate: rate,
            at,
        };
        self.records.send(Record::Step(begin)).await.ok()?;
        self.control.set_rate(group, rate);
        tokio::time::sleep(self.sweep.step).await;
        let end = StepMark::End { at: Instant::now() };
        self.records.send(Record::Step(end)).await.ok()?;
        self.control.hold(group);
        self.steps.recv().await
    }

    /// Wait (up to `settle`) until every standby has replayed the primary's position.
    async fn wait_caught_up(&self) {
        let view = self.topology.view();
        let Some(p) = view.primary() else { return };
        let nodes: Vec<Endpoint> = std::iter::once(p)
            .chain(view.standbys())
            .map(|n| view.nodes[n].endpoint.clone())
            .collect();
        let _ = crate::consistency::wait_for_replay(&nodes, self.sweep.settle).await;
    }

    /// At the max sustainable rate, pause every standby's link for `probe`, then let them catch
    /// up: the drill tracker measures each one's replay rate (its catch-up).
    async fn probe(&mut self, rate: f64, lab: &Lab) {
        self.wait_caught_up().await;
        self.control.set_rate(self.sweep.group, rate);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let view = self.topology.view();
        let standbys: Vec<String> = view.standbys().map(|i| view.name(i).to_string()).collect();
        for node in &standbys {
            self.link(
                lab,
                Request::Pause { node: node.clone() },
                "pause_link",
                node,
            )
            .await;
        }
        tokio::time::sleep(self.sweep.probe).await;
        for node in &standbys {
            self.link(
                lab,
                Request::Resume { node: node.clone() },
                "resume_link",
                node,
            )
            .await;
        }
        self.wait_caught_up().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.control.hold(self.sweep.group);
    }

    async fn link(&self, lab: &Lab, req: Request, kind: &str, node: &str) {
        let began = Instant::now();
        let result = lab.links().send(&req).await;
        let _ = self
            .records
            .send(Record::Event(EventRecord {
                at: began,
                kind: kind.into(),
                node: node.into(),
                detail: match &result {
                    Ok(_) => "replay probe".into(),
                    Err(e) => format!("replay probe failed: {e:#}"),
                },
                took: result.ok().map(|_| began.elapsed()),
                undo: false,
            }))
            .await;
    }

    async fn note(&self, kind: &str, detail: &str) {
        let _ = self
            .records
            .send(Record::Event(EventRecord {
                at: Instant::now(),
                kind: kind.into(),
                node: String::new(),
                detail: detail.into(),
                took: None,
                undo: false,
            }))
            .await;
    }
}

/// The sweep's part of summary.json from its judged steps and what the run measured.
pub fn summarize(
    sweep: &Sweep,
    group: &str,
    steps: Vec<SweepStep>,
    drills: &crate::record::Drills,
) -> crate::record::capacity::SweepSummary {
    use crate::record::capacity::{project, CurrentRate, SweepSummary};
    let (max, limit) = verdict(&steps);
    let replay: indexmap::IndexMap<String, f64> = drills
        .interruption
        .iter()
        .filter_map(|(n, i)| Some((n.clone(), (i.replay_mb_per_s? * 1e6).round())))
        .collect();
    let slowest = replay.values().cloned().reduce(f64::min);
    let at = |rate: f64| {
        steps
            .iter()
            .filter(|s| s.stats.wal_bytes_per_s.is_some())
            .min_by(|a, b| {
                (a.stats.offered_rate - rate)
                    .abs()
                    .total_cmp(&(b.stats.offered_rate - rate).abs())
            })
            .map(|s| {
                let wal = s.stats.wal_bytes_per_s.unwrap_or(0.0) * rate / s.stats.offered_rate;
                let pg_wal = s.stats.peak_pg_wal_bytes.unwrap_or(0) as f64;
                project(rate, wal, pg_wal, slowest)
            })
    };
    let projections = max.and_then(at);
    let current = sweep.current.and_then(|c| {
        Some(CurrentRate {
            rate: c,
            headroom: max.map(|m| (m / c * 100.0).round() / 100.0),
            projections: at(c)?,
        })
    });
    SweepSummary {
        group: group.to_string(),
        slo: sweep
            .slo
            .iter()
            .map(|e| format!("{} {}", e.path, e.text))
            .collect(),
        steps,
        max_sustainable_rate: max,
        limit,
        replay_bytes_per_s: replay,
        projections,
        current,
    }
}
