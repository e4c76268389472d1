//! The load's threads: one per core, each a current-thread tokio runtime that owns its clients
//! and their connections, so a client and its connection never wake each other across threads.
//! Each thread hands its clients' records to the recorder in batches.

use super::client::{run_client, Shared};
use crate::messages::Record;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// How long a worker collects records before it hands them over.
const BATCH_EVERY: Duration = Duration::from_millis(10);
/// ... or how many it collects at most.
const BATCH_MAX: usize = 512;
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
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
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
    let (local_tx, local_rx) = mpsc::channel::<Record>(4096);
    let batcher = tokio::spawn(batch(local_rx, records));
    let mut set = JoinSet::new();
    let mut group_of = std::collections::HashMap::new();
    for c in clients {
        let fut = run_client(
            shared.clone(),
            c.group,
            c.id,
            local_tx.clone(),
            ready.clone(),
            start.clone(),
            stop.clone(),
        );
        let handle = set.spawn(fut);
        group_of.insert(handle.id(), c.group);
    }
    drop((local_tx, ready));
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
                    eprintln!("warning: a client stopped abnormally: {e}");
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
    let _ = batcher.await;
}

/// Forward records to the recorder in batches: every BATCH_EVERY, or BATCH_MAX at a time.
async fn batch(mut rx: mpsc::Receiver<Record>, out: mpsc::Sender<Record>) {
    let mut buf: Vec<Record> = Vec::with_capacity(BATCH_MAX);
    let mut tick = tokio::time::interval(BATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = rx.recv() => match r {
                Some(r) => {
                    buf.push(r);
                    if buf.len() >= BATCH_MAX {
                        let full = std::mem::replace(&mut buf, Vec::with_capacity(BATCH_MAX));
                        if out.send(Record::Batch(full)).await.is_err() {
                            return;
                        }
                    }
                }
                None => break,
            },
            _ = tick.tick(), if !buf.is_empty() => {
                let full = std::mem::replace(&mut buf, Vec::with_capacity(BATCH_MAX));
                if out.send(Record::Batch(full)).await.is_err() {
                    return;
                }
            }
        }
    }
    if !buf.is_empty() {
        let _ = out.send(Record::Batch(buf)).await;
    }
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
