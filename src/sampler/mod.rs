//! The replication sampler (DESIGN section 6): every `sample_every`, the primary's WAL
//! position, timeline, pg_stat_replication, slots and pg_stat_wal, and every other node's
//! receive/replay position asked of the node itself (never through the link shaper). Which
//! node is the primary comes from the topology, so after a promotion the promoted node is
//! sampled as the primary and the old one as a node that is down. One `ReplSample` per tick
//! goes to the recorder.

pub mod build;
pub mod heartbeat;
pub mod probe;
pub mod timeline;

use crate::messages::Record;
use crate::topology::Topology;
use build::SampleBuilder;
use probe::{Probe, STANDBY_QUERY, WAL_DIR_QUERY};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

/// pg_stat_replication, slots and pg_stat_wal are read at most this often.
const FULL_EVERY: Duration = Duration::from_millis(100);

/// The primary's pg_wal size, read at most once a second and carried forward; given up when
/// the server refuses (pg_ls_waldir needs superuser or pg_monitor).
#[derive(Default)]
struct WalDir {
    last: Option<(usize, Instant, Option<u64>)>,
    refused: bool,
}

impl WalDir {
    async fn read(&mut self, primary: &mut Probe, node: usize) -> Option<u64> {
        if self.refused {
            return None;
        }
        if let Some((n, at, v)) = self.last {
            if n == node && at.elapsed() < Duration::from_secs(1) {
                return v;
            }
        }
        let v = match primary.ask(WAL_DIR_QUERY).await {
            Some((_, cols)) => cols.first().cloned().flatten().and_then(|t| t.parse().ok()),
            None if primary.refused(WAL_DIR_QUERY) => {
                self.refused = true;
                None
            }
            None => None,
        };
        self.last = Some((node, Instant::now(), v));
        v
    }
}

/// Sample until the run stops. Never fails: a node that does not answer is recorded as down.
pub async fn run_sampler(
    topology: Arc<Topology>,
    every: Duration,
    origin: Instant,
    records: mpsc::Sender<Record>,
    mut stop: watch::Receiver<bool>,
) {
    let view = topology.view();
    let mut probes: Vec<Probe> = view
        .nodes
        .iter()
        .map(|n| Probe::new(n.endpoint.clone()))
        .collect();
    let mut builder = SampleBuilder::new(origin).known_as(
        view.nodes
            .iter()
            .map(|n| (n.name.clone(), n.repl_name.clone())),
    );
    let mut last_full: Option<(usize, Instant)> = None;
    let mut wal_dir = WalDir::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
        let view = topology.view();
        let Some(p) = view.primary() else { continue };
        // A full query at most every FULL_EVERY, and at once for a new primary.
        let full = last_full.is_none_or(|(node, t): (usize, Instant)| {
            node != p || t.elapsed() + every / 2 >= FULL_EVERY
        });
        let (before, rest) = probes.split_at_mut(p);
        let (primary, after) = rest.split_first_mut().expect("p is a node");
        let others = before.iter_mut().chain(after.iter_mut());
        let (answer, answers) = tokio::join!(
            primary.ask_primary(full),
            futures_util::future::join_all(others.map(|n| n.ask(STANDBY_QUERY)))
        );
        if full && answer.is_some() {
            last_full = Some((p, Instant::now()));
        }
        let names = (0..view.len())
            .filter(|i| *i != p)
            .map(|i| view.name(i).to_string());
        let mut sample = builder.build(view.name(p), answer, names.zip(answers).collect());
        sample.pg_wal_bytes = wal_dir.read(&mut probes[p], p).await;
        if let Some(tl) = sample.timeline {
            topology.observe_timeline(tl);
        }
        if records
            .send(Record::Sample(Box::new(sample)))
            .await
            .is_err()
        {
            break;
        }
    }
}
