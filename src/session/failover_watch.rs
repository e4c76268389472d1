//! Drills the orchestrator decides (DESIGN section 15): after a kill of the primary nothing
//! in the workload promotes; the run asks the orchestrator (or a `[cluster]`'s nodes) who
//! takes writes until a node does, moves the load there, and records the promotion with when
//! it began by the orchestrator's own record. When the run ends first, it records that no
//! promotion happened, how long it waited and the orchestrator's own account of why. A killed
//! former primary that is started again is followed the same way until it streams. After
//! the workload's own promote, the other standbys are followed until they stream from it.

use crate::cluster::ha::watch::{Orchestrator, POLL};
use crate::cluster::{self, Lab};
use crate::messages::{EventRecord, Record};
use crate::topology::Topology;
use crate::units::format_duration;
use anyhow::anyhow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What a watch works with.
pub struct Watch {
    pub orchestrator: Arc<dyn Orchestrator>,
    pub topology: Arc<Topology>,
    pub records: mpsc::Sender<Record>,
}

/// The instant on the run's clock of a wall-clock time (the orchestrator's record, on this
/// machine's clock), no later than `latest`.
fn instant_of(wall: SystemTime, latest: Instant) -> Instant {
    let ago = SystemTime::now()
        .duration_since(wall)
        .unwrap_or(Duration::ZERO);
    Instant::now()
        .checked_sub(ago)
        .unwrap_or(latest)
        .min(latest)
}

impl Watch {
    async fn event(
        &self,
        at: Instant,
        kind: &str,
        node: &str,
        detail: String,
        took: Option<Duration>,
    ) {
        let _ = self
            .records
            .send(Record::Event(EventRecord {
                at,
                kind: kind.into(),
                node: node.into(),
                detail,
                took,
                undo: false,
            }))
            .await;
    }

    /// A node of the run other than `killed` that the orchestrator says takes writes.
    async fn new_writer(&self, killed: &str) -> Option<String> {
        let w = self.orchestrator.writer().await?;
        (w != killed && self.topology.view().index_of(&w).is_some()).then_some(w)
    }

    /// Wait for a promotion after `killed` died (at `killed_wall`), until the run stops.
    pub async fn failover(
        self,
        killed: String,
        killed_wall: SystemTime,
        mut stop: watch::Receiver<bool>,
    ) {
        let waiting = Instant::now();
        loop {
            if let Some(w) = self.new_writer(&killed).await {
                return self.promoted(&w, killed_wall).await;
            }
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
        let waited = waiting.elapsed();
        let why = self.orchestrator.why_not(&killed).await;
        let detail = format!(
            "{} promoted no node in the {} the run waited after the kill: {why}",
            self.orchestrator.decided_by(),
            format_duration(waited)
        );
        crate::errln!("warning: {detail}");
        self.event(waiting, "no_promotion", &killed, detail, Some(waited))
            .await;
    }

    /// `node` takes writes: the load moves there; the promotion is recorded from when it
    /// began by the orchestrator's record (or, with none, from when it was seen).
    async fn promoted(&self, node: &str, killed_wall: SystemTime) {
        let seen = Instant::now();
        let began = self.record_of(node, killed_wall).await;
        let followed = match self.topology.promote(node) {
            Ok(_) => "the load's writes go there now".to_string(),
            Err(why) => format!("the load does not follow ({why})"),
        };
        let by = self.orchestrator.decided_by();
        match began {
            Some(wall) => {
                let at = instant_of(wall, seen);
                let detail = format!(
                    "decided by {by}: {node} takes writes; its promotion began {} before ({by}'s own record); {followed}",
                    format_duration(seen - at)
                );
                self.event(at, "promote", node, detail, Some(seen - at))
                    .await;
            }
            None => {
                let detail = format!(
                    "{node} answers out of recovery (seen by the tool: {by} keeps no record of when its promotion began); {followed}"
                );
                self.event(seen, "promotion_seen", node, detail, Some(Duration::ZERO))
                    .await;
            }
        }
    }

    /// The orchestrator's record of when the promotion began; a record written a moment
    /// after the node takes writes (Patroni logs through a queue) is waited for, up to 3 s.
    async fn record_of(&self, node: &str, since: SystemTime) -> Option<SystemTime> {
        if self.orchestrator.decided_by() == "observed" {
            return None;
        }
        for _ in 0..20 {
            if let Some(t) = self.orchestrator.promotion_began(node, since).await {
                return Some(t);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        None
    }

    /// `node` was started again after a failover: wait until the orchestrator has it
    /// streaming as a standby, then give it back its reads.
    pub async fn rejoin(self, node: String, started: Instant, mut stop: watch::Receiver<bool>) {
        loop {
            if self.orchestrator.rejoined(&node).await {
                let _ = self.topology.rejoin(&node);
                let detail = format!(
                    "{} rewound it and it streams as a standby again",
                    self.orchestrator.decided_by()
                );
                self.event(started, "rejoin", &node, detail, Some(started.elapsed()))
                    .await;
                return;
            }
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
        let detail = format!(
            "failed after {}: {} had not rejoined it when the run ended",
            format_duration(started.elapsed()),
            self.orchestrator.decided_by()
        );
        self.event(started, "rejoin", &node, detail, None).await;
    }
}

/// Wait until the standbys stream from a new primary; record when they do (or why not), and
/// give up when the run stops.
pub async fn follow(lab: Lab, records: mpsc::Sender<Record>, mut stop: watch::Receiver<bool>) {
    let began = Instant::now();
    let result = tokio::select! {
        r = cluster::wait_following(&lab) => r.map(|()| "every running standby streams from the new primary".to_string()),
        _ = stop.wait_for(|s| *s) => Err(anyhow!("abandoned: the run stopped")),
    };
    let took = began.elapsed();
    let (detail, took) = match result {
        Ok(d) => (format!("{d} ({})", format_duration(took)), Some(took)),
        Err(e) => (
            format!("failed after {}: {e:#}", format_duration(took)),
            None,
        ),
    };
    let _ = records
        .send(Record::Event(EventRecord {
            at: began,
            kind: "standbys_follow".into(),
            node: String::new(),
            detail,
            took,
            undo: false,
        }))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_clock_record_maps_to_the_run_clock_and_never_after_it_was_seen() {
        let seen = Instant::now();
        let two_s_ago = SystemTime::now() - Duration::from_secs(2);
        let at = instant_of(two_s_ago, seen);
        let d = seen.duration_since(at).as_secs_f64();
        assert!((1.9..2.1).contains(&d), "{d}");
        let future = SystemTime::now() + Duration::from_secs(5);
        assert_eq!(instant_of(future, seen), seen.min(Instant::now()));
    }
}
