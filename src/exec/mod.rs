//! Running the load: clients per group, the pacer and the router, every measurement sent to
//! the recorder over one channel. The session above starts it, stops it, and runs the sampler
//! and the drill timeline beside it.

mod batch;
mod client;
mod outcome;
mod pacer;
pub mod preflight;
mod router;
mod txn;
mod workers;

pub use client::{GroupRuntime, Shared};
pub use outcome::{classify, error_kind, retryable, ErrorKind, Phase};
pub use pacer::{Pace, Quota, Schedule, Slot};
pub use router::Router;

use crate::messages::Record;
use crate::topology::Topology;
use crate::workload::Workload;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Changes a group's pace during the run.
#[derive(Clone)]
pub struct RateControl {
    shared: Arc<Shared>,
}

impl RateControl {
    /// Group `group` runs at `rate` per second from now on.
    pub fn set_rate(&self, group: usize, rate: f64) {
        self.shared.groups[group]
            .pace
            .set_rate(Instant::now(), rate);
    }

    /// Group `group` starts nothing until the next `set_rate`.
    pub fn hold(&self, group: usize) {
        self.shared.groups[group].pace.hold();
    }
}

/// Why the load stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The run's duration passed.
    Duration,
    /// Every group with a stop_after is done (or every client ended).
    Done,
    /// The caller's interrupt future resolved (a signal): carries what it returned.
    Interrupted(i32),
}

/// How the load phase ended.
pub struct LoadEnd {
    pub stop: Stop,
    /// Per group: open-model slots due but not started.
    pub backlog: Vec<Option<u64>>,
    /// When the load was told to stop (in-flight transactions finished after it).
    pub stopped_at: Instant,
}

/// Clients that have connected and wait for the start.
pub struct Load {
    shared: Arc<Shared>,
    workers: workers::Workers,
    start_tx: watch::Sender<bool>,
    stop_tx: watch::Sender<bool>,
}

/// Spawn every client on the load threads and wait (up to 60 s) until each has opened its
/// connections.
pub async fn connect_clients(
    plan: Arc<Workload>,
    topology: Arc<Topology>,
    records: mpsc::Sender<Record>,
) -> std::io::Result<Load> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (start_tx, start_rx) = watch::channel(false);
    let groups: Vec<GroupRuntime> = plan
        .groups
        .iter()
        .map(|g| GroupRuntime {
            quota: Quota::new(g.stop_after),
            pace: Pace::default(),
        })
        .collect();
    let shared = Arc::new(Shared {
        keys: plan.tracks_keys(),
        plan: plan.clone(),
        topology,
        router: Router::default(),
        records,
        groups,
    });
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(1);
    let mut specs = Vec::new();
    for (gi, g) in plan.groups.iter().enumerate() {
        for k in 0..g.clients {
            specs.push(workers::ClientSpec {
                group: gi,
                id: g.first_client_id + k,
            });
        }
    }
    let setup = workers::WorkerSetup {
        shared: shared.clone(),
        records: shared.records.clone(),
        ready: ready_tx,
        start: start_rx,
        stop: stop_rx,
    };
    let workers = workers::spawn(specs, setup)?;
    // Every client drops its sender once connected: recv() returns None when all have.
    let _ = tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await;
    Ok(Load {
        shared,
        workers,
        start_tx,
        stop_tx,
    })
}

impl Load {
    /// A handle that changes the groups' rates while the load runs (a sweep).
    pub fn control(&self) -> RateControl {
        RateControl {
            shared: self.shared.clone(),
        }
    }

    /// Start the load at `origin` and drive it until the duration passes, every stop_after
    /// group is done, or `until` resolves (a signal, a sweep's end): then with what it says.
    /// In-flight transactions get 10 s to finish.
    pub async fn run(self, origin: Instant, until: impl Future<Output = Stop>) -> LoadEnd {
        let Load {
            shared,
            mut workers,
            start_tx,
            stop_tx,
        } = self;
        let plan = shared.plan.clone();
        let swept = plan.sweep.as_ref().map(|s| s.group);
        for (gi, (g, rt)) in plan.groups.iter().zip(&shared.groups).enumerate() {
            if swept == Some(gi) {
                rt.pace.hold(); // a sweep's steps set its rate
            } else if let Some(rate) = g.rate {
                rt.pace.set_rate(origin, rate);
            }
        }
        let _ = start_tx.send(true);
        let end = plan.duration.map(|d| origin + plan.warmup + d);
        let mut remaining: Vec<u32> = plan.groups.iter().map(|g| g.clients).collect();
        tokio::pin!(until);
        let stop = loop {
            tokio::select! {
                _ = async { tokio::time::sleep_until(end.unwrap()).await }, if end.is_some() => break Stop::Duration,
                ended = workers.ended.recv() => match ended {
                    Some(gi) => {
                        remaining[gi] -= 1;
                        if remaining[gi] == 0 {
                            shared.groups[gi].quota.finish();
                        }
                        let limited_done = shared.groups.iter().all(|g| !g.quota.has_limit() || g.quota.is_finished());
                        if (end.is_none() && limited_done) || remaining.iter().all(|r| *r == 0) {
                            break Stop::Done;
                        }
                    }
                    None => break Stop::Done,
                },
                why = &mut until => break why,
            }
        };
        let stopped_at = Instant::now();
        let _ = stop_tx.send(true);
        // The threads give in-flight transactions DRAIN to finish, then abort the rest.
        workers.join().await;
        let backlog = shared
            .groups
            .iter()
            .map(|g| g.pace.schedule().map(|s| s.backlog(stopped_at)))
            .collect();
        LoadEnd {
            stop,
            backlog,
            stopped_at,
        }
    }
}
