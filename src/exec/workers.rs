//! The load's threads: one per core, each a current-thread tokio runtime that owns its clients
//! and their connections, so a client and its connection never wake each other across threads.
//! Each thread hands its clients' records to the recorder in batches (`batch`).

use super::batch::{forward, Batch};
use super::client::{run_client, Shared};
use crate::messages::Record;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// In-flight transactions get this long to finish after the stop.
pub const DRAIN: Duration = Duration::from_secs(10);

/// One client to run: its group and its id (1-based, unique in the run).
#[derive(Debug, Clone, Copy)]
pub struct ClientSpec {
    pub group: usize,
    pub id: u32,
}

/// The running threads.
pub struct Workers {
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The group of each client that ended (one that crashed too).
    pub ended: mpsc::UnboundedReceiver<usize>,
}

/// What every worker thread gets.
pub struct WorkerSetup {
    pub shared: Arc<Shared>,
    pub records: mpsc::Sender<Record>,
    pub ready: mpsc::Sender<()>,
    pub start: watch::Receiver<bool>,
    pub stop: watch::Receiver<bool>,
}

/// The number of load threads: one per core.
pub fn thread_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Start the threads, the clients spread over them round-robin.
pub fn spawn(clients: Vec<ClientSpec>, setup: WorkerSetup) -> std::io::Result<Workers> {
    let n = thread_count().min(clients.len().max(1));
    let mut per_thread: Vec<Vec<ClientSpec>> = vec![Vec::new(); n];
    for (i, c) in clients.into_iter().enumerate() {
        per_thread[i % n].push(c);
    }
    let (ended_tx, ended) = mpsc::unbounded_channel();
    let mut threads = Vec::new();
    for (i, mine) in per_thread.into_iter().enumerate() {
        let shared = setup.shared.clone();
        let records = setup.records.clone();
        let ready = setup.ready.clone();
        let (start, stop) = (setup.start.clone(), setup.stop.clone());
        let ended_tx = ended_tx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("load-{i}"))
            .spawn(move || {
                // Sockets and timers only: a load thread spawns no processes and takes no
                // signals (the process driver would look for orphans at every park).
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                    .expect("a current-thread runtime");
                rt.block_on(run_thread(
                    mine, shared, records, ready, start, stop, ended_tx,
                ));
            })?;
        threads.push(thread);
    }
    Ok(Workers { threads, ended })
}

async fn run_thread(
    clients: Vec<ClientSpec>,
    shared: Arc<Shared>,
    records: mpsc::Sender<Record>,
    ready: mpsc::Sender<()>,
    start: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
    ended: mpsc::UnboundedSender<usize>,
) {
    let local = Arc::new(Batch::default());
    let done = Arc::new(tokio::sync::Notify::new());
    let forwarder = tokio::spawn(forward(local.clone(), records, done.clone()));
    let mut set = JoinSet::new();
    let mut group_of = std::collections::HashMap::new();
    for c in clients {
        let fut = run_client(
            shared.clone(),
            c.group,
            c.id,
            local.clone(),
            ready.clone(),
            start.clone(),
            stop.clone(),
        );
        let handle = set.spawn(fut);
        group_of.insert(handle.id(), c.group);
    }
    drop(ready);
    let mut draining: Option<tokio::time::Instant> = None;
    loop {
        let deadline = draining
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
        tokio::select! {
            joined = set.join_next_with_id() => match joined {
                Some(Ok((id, ()))) => {
                    let _ = ended.send(group_of[&id]);
                }
                Some(Err(e)) => {
                    crate::errln!("warning: a client stopped abnormally: {e}");
                    let _ = ended.send(group_of[&e.id()]);
                }
                None => break,
            },
            _ = stop.wait_for(|s| *s), if draining.is_none() => {
                draining = Some(tokio::time::Instant::now() + DRAIN);
            }
            _ = tokio::time::sleep_until(deadline), if draining.is_some() => {
                set.abort_all();
                while set.join_next().await.is_some() {}
                break;
            }
        }
    }
    done.notify_one();
    let _ = forwarder.await;
}

impl Workers {
    /// Wait (off the async threads) until every load thread has ended.
    pub async fn join(self) {
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}
