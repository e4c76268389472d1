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
use tokio::time::Instant;

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

/// When samples are taken: one in each period of `sample_every`, at a random point of it.
/// Evenly spaced samples lock in phase with an evenly paced load (an open-model group at 50/s
/// writes every 20 ms, exactly): every sample then fell, say, 2 ms after a write still on the
/// link, and a 5 ms link read 17 ms of lag in every sample of a run. At random points of each
/// period the samples see every phase of the load, at the same average rate.
struct Ticks {
    every: std::time::Duration,
    period_start: Instant,
    rng: rand::rngs::SmallRng,
}

impl Ticks {
    fn new(every: std::time::Duration) -> Self {
        use rand::SeedableRng;
        Ticks {
            every,
            period_start: Instant::now(),
            rng: rand::rngs::SmallRng::from_entropy(),
        }
    }

    /// Sleep until this period's sample time; the next period starts where this one ends. A
    /// period the sampler missed (a slow answer) is skipped, not caught up with.
    async fn next(&mut self) {
        use rand::Rng;
        let now = Instant::now();
        while self.period_start + self.every < now {
            self.period_start += self.every;
        }
        let at = self.period_start + self.every.mul_f64(self.rng.gen::<f64>());
        self.period_start += self.every;
        tokio::time::sleep_until(at.max(now)).await;
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
    let mut tick = Ticks::new(every);
    loop {
        tokio::select! {
            _ = tick.next() => {}
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
