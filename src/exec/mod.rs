//! Running the load: clients per group, the pacer, the drill timeline and the WAL probe, all
//! sending their measurements to the recorder over one channel.

mod client;
mod conn;
mod events;
mod messages;
mod pacer;
pub mod preflight;
mod router;
mod topology;
mod txn;

pub use client::{GroupRuntime, Shared};
pub use conn::{Conn, Endpoint};
pub use messages::{Counter, EventRecord, Outcome, Record, TxSample};
pub use pacer::{Quota, Schedule};
pub use router::Router;
pub use topology::Topology;
pub use txn::parse_lsn;

use crate::cluster::Lab;
use crate::workload::Workload;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How the load phase ended.
pub struct LoadEnd {
    pub interrupted: bool,
    /// Per group: open-model slots due but not started.
    pub backlog: Vec<Option<u64>>,
}

/// Clients that have connected and wait for the start.
pub struct Load {
    shared: Arc<Shared>,
    clients: JoinSet<usize>,
    /// Which group each client task belongs to (to count a crashed client too).
    group_of: std::collections::HashMap<tokio::task::Id, usize>,
    start_tx: watch::Sender<bool>,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
}

/// Spawn every client and wait (up to 60 s) until each has opened its connections.
pub async fn connect_clients(
    plan: Arc<Workload>,
    endpoints: Vec<Endpoint>,
    records: mpsc::Sender<Record>,
) -> Load {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (start_tx, start_rx) = watch::channel(false);
    let groups: Vec<GroupRuntime> = plan
        .groups
        .iter()
        .map(|g| GroupRuntime {
            quota: Quota::new(g.stop_after),
            schedule: std::sync::OnceLock::new(),
        })
        .collect();
    let names = endpoints.iter().map(|e| e.name.clone()).collect();
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        topology: Arc::new(Topology::new(endpoints.clone())),
        router: Router::new(names, records.clone()),
        records,
        groups,
    });
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(1);
    let mut clients = JoinSet::new();
    let mut group_of = std::collections::HashMap::new();
    let mut id = 0u32;
    for (gi, g) in plan.groups.iter().enumerate() {
        for _ in 0..g.clients {
            id += 1;
            let (s, ready, start, stop) = (
                shared.clone(),
                ready_tx.clone(),
                start_rx.clone(),
                stop_rx.clone(),
            );
            let handle = clients.spawn(async move {
                client::run_client(s, gi, id, ready, start, stop).await;
                gi
            });
            group_of.insert(handle.id(), gi);
        }
    }
    drop(ready_tx);
    // Every client drops its sender once connected: recv() returns None when all have.
    let _ = tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await;
    Load {
        shared,
        clients,
        group_of,
        start_tx,
        stop_tx,
        stop_rx,
    }
}

impl Load {
    /// Start the load at `origin` and drive it until the duration passes, every stop_after
    /// group is done, or Ctrl-C. In-flight transactions get 10 s to finish.
    pub async fn run(self, lab: Option<Lab>, origin: Instant) -> LoadEnd {
        let Load {
            shared,
            mut clients,
            group_of,
            start_tx,
            stop_tx,
            stop_rx,
        } = self;
        let plan = shared.plan.clone();
        for (g, rt) in plan.groups.iter().zip(&shared.groups) {
            if let Some(rate) = g.rate {
                let _ = rt.schedule.set(Schedule::new(origin, rate));
            }
        }
        let records = shared.records.clone();
        let sampler = plan.sample_every.map(|every| {
            tokio::spawn(crate::sampler::run_sampler(
                shared.topology.clone(),
                every,
                origin,
                records.clone(),
                stop_rx.clone(),
            ))
        });
        let timeline = tokio::spawn(events::run_timeline(
            plan.events.clone(),
            lab,
            shared.clone(),
            origin,
            records,
            stop_rx.clone(),
        ));
        let _ = start_tx.send(true);

        let end = plan.duration.map(|d| origin + plan.warmup + d);
        let mut remaining: Vec<u32> = plan.groups.iter().map(|g| g.clients).collect();
        let mut interrupted = false;
        loop {
            tokio::select! {
                _ = async { tokio::time::sleep_until(end.unwrap()).await }, if end.is_some() => break,
                joined = clients.join_next_with_id() => match joined.map(|r| match r {
                    Ok((_, gi)) => gi,
                    Err(e) => {
                        eprintln!("warning: a client stopped abnormally: {e}");
                        group_of[&e.id()]
                    }
                }) {
                    Some(gi) => {
                        remaining[gi] -= 1;
                        if remaining[gi] == 0 {
                            shared.groups[gi].quota.finish();
                        }
                        let limited_done = shared.groups.iter().all(|g| !g.quota.has_limit() || g.quota.is_finished());
                        if (end.is_none() && limited_done) || remaining.iter().all(|r| *r == 0) {
                            break;
                        }
                    }
                    None => break,
                },
                _ = tokio::signal::ctrl_c() => {
                    interrupted = true;
                    eprintln!("\ninfo: interrupted: stopping the clients and keeping what was measured");
                    break;
                }
            }
        }
        let stopped_at = Instant::now();
        let _ = stop_tx.send(true);
        let drain = async { while clients.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .is_err()
        {
            clients.abort_all();
        }
        if let Some(s) = sampler {
            let _ = s.await;
        }
        if tokio::time::timeout(Duration::from_secs(60), timeline)
            .await
            .is_err()
        {
            eprintln!("warning: a drill action was still running when the run ended");
        }
        let backlog = shared
            .groups
            .iter()
            .map(|g| g.schedule.get().map(|s| s.backlog(stopped_at)))
            .collect();
        LoadEnd {
            interrupted,
            backlog,
        }
    }
}
