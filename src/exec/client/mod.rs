//! One client: picks transactions from its group's mix, routes them by the topology of the
//! moment, runs them (retrying serialization failures up to max_tries), reconnects with backoff
//! after a connection loss, and sends every outcome to the recorder.

mod connect;

use super::batch::Batch;
use super::pacer::{Pace, Quota, Slot};
use super::router::Router;
use super::txn::{run_copy, run_pipelined, run_sql, TxResult, Vars};
use crate::messages::{EventRecord, Outcome, Record, TxSample};
use crate::pg::wire::WireConn as Conn;
use crate::topology::{HealthChange, NodeRole, Topology, View};
use crate::workload::value::Value;
use crate::workload::{Body, Group, Target, Transaction, Workload};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How long a read_your_writes read waits for a standby before it goes to the primary.
pub const RYW_WAIT: Duration = Duration::from_millis(50);

/// A group's shared pacing state. The schedule is set when the load starts (after every
/// client has connected), so connection set-up never shows as schedule lag; a sweep changes
/// it step by step.
pub struct GroupRuntime {
    pub quota: Quota,
    pub pace: Pace,
}

/// What every client shares.
pub struct Shared {
    pub plan: Arc<Workload>,
    /// Every write also inserts a key (a failover drill).
    pub keys: bool,
    pub topology: Arc<Topology>,
    pub router: Router,
    pub records: mpsc::Sender<Record>,
    pub groups: Vec<GroupRuntime>,
}

impl Shared {
    fn event(&self, kind: &str, node: &str, detail: String) {
        let _ = self.records.try_send(Record::Event(EventRecord {
            at: Instant::now(),
            kind: kind.into(),
            node: node.into(),
            detail,
            took: None,
            undo: false,
        }));
    }

    /// A connection to `node` failed or broke: the topology skips it for a while; say so once.
    fn report_down(&self, view: &View, node: usize, why: &str) {
        if self.topology.report_down(node) == HealthChange::WentDown {
            let detail = match view.nodes[node].role {
                NodeRole::Primary => format!("the primary is unreachable: {why}"),
                _ => format!("reads go to the other standbys or the primary: {why}"),
            };
            self.event("node_down", view.name(node), detail);
        }
    }

    fn report_up(&self, view: &View, node: usize) {
        if self.topology.report_up(node) == HealthChange::CameBack {
            self.event(
                "node_up",
                view.name(node),
                "connections succeed again".into(),
            );
        }
    }
}

struct Client {
    shared: Arc<Shared>,
    group: usize,
    id: u32,
    rng: SmallRng,
    conns: Vec<Option<Conn>>,
    failures: Vec<u32>,
    last_commit_lsn: Option<u64>,
    writes: i64,
    /// The next key of a drill's write.
    next_key: i64,
    /// Where this client's measurements go (its worker thread's batch).
    records: Arc<Batch>,
    stop: watch::Receiver<bool>,
    /// The stop has been seen (read without the watch's lock: see `stopped`).
    stop_seen: bool,
    /// The parameter values of the transaction running (reused: no allocation per transaction).
    values: Vec<Value>,
    /// The roles this client's connections were opened for.
    view: View,
    roles: watch::Receiver<View>,
}

/// Connect one client, report ready, wait for the start, then run it until the run stops or
/// its group's budget is spent.
pub async fn run_client(
    shared: Arc<Shared>,
    group: usize,
    id: u32,
    records: Arc<Batch>,
    ready: mpsc::Sender<()>,
    mut start: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) {
    let seed = shared.plan.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(id);
    let mut roles = shared.topology.subscribe();
    let view = roles.borrow_and_update().clone();
    let mut c = Client {
        rng: SmallRng::seed_from_u64(seed),
        conns: (0..view.len()).map(|_| None).collect(),
        failures: vec![0; view.len()],
        shared,
        group,
        id,
        last_commit_lsn: None,
        writes: 0,
        next_key: 0,
        records,
        stop,
        stop_seen: false,
        values: Vec::new(),
        view,
        roles,
    };
    c.warm_up().await;
    drop(ready);
    while !*start.borrow_and_update() {
        if start.changed().await.is_err() {
            return;
        }
    }
    c.run().await;
}

impl Client {
    /// Whether the run has stopped. Checked between transactions, so it reads the watch's
    /// version (one atomic load of a line no one writes until the stop) and takes the watch's
    /// lock only when it changed: every client of every thread shares that lock.
    fn stopped(&mut self) -> bool {
        if !self.stop_seen {
            self.stop_seen = match self.stop.has_changed() {
                Ok(false) => false,
                Ok(true) => *self.stop.borrow_and_update(),
                Err(_) => true,
            };
        }
        self.stop_seen
    }

    /// Sleep until slot `t`; false if the run stops or the pace changes first.
    async fn sleep_until_slot(&mut self, t: Instant, pace: &Pace) -> bool {
        let mut changed = pace.subscribe();
        changed.mark_unchanged();
        tokio::select! {
            _ = tokio::time::sleep_until(t) => !self.stopped(),
            r = self.stop.changed() => {
                self.stop_seen = r.is_err() || *self.stop.borrow();
                false
            }
            _ = changed.changed() => false,
        }
    }

    /// After a role change, drop every connection: the next transactions reconnect to the
    /// nodes as they are now (writes to the new primary, in sessions set up for it).
    fn follow_topology(&mut self) {
        // One atomic load per transaction; the view itself only when the roles changed.
        if self.shared.topology.generation() == self.view.generation {
            return;
        }
        let view = self.roles.borrow_and_update().clone();
        // Reopen the connections to nodes whose role changed (the new primary's sessions get
        // the run's settings); the others stay.
        for (i, conn) in self.conns.iter_mut().enumerate() {
            if view.nodes[i].role != self.view.nodes[i].role {
                *conn = None;
                self.failures[i] = 0;
            }
        }
        self.last_commit_lsn = None;
        self.view = view;
    }

    /// Open the connections this client will use (the primary, and the standbys if its mix
    /// reads there). Failures are left for the run to retry.
    async fn warm_up(&mut self) {
        let plan = self.shared.plan.clone();
        let reads_standbys = plan.groups[self.group]
            .mix
            .iter()
            .any(|(i, _)| plan.transactions[*i].target != Target::Primary);
        let nodes: Vec<usize> = if reads_standbys {
            (0..self.view.len()).collect()
        } else {
            self.view.primary().into_iter().collect()
        };
        for node in nodes {
            let _ = self.try_connect(node).await;
        }
    }

    async fn run(&mut self) {
        let shared = self.shared.clone();
        let group: &Group = &shared.plan.groups[self.group];
        let runtime = &shared.groups[self.group];
        let total: u32 = group.mix.iter().map(|(_, w)| w).sum();
        while !self.stopped() {
            self.follow_topology();
            let intended = match runtime.pace.next() {
                Slot::At(t) => {
                    if t > Instant::now() && !self.sleep_until_slot(t, &runtime.pace).await {
                        if self.stopped() {
                            break;
                        }
                        continue; // the pace changed meanwhile: take a slot of the new one
                    }
                    Some(t)
                }
                Slot::Closed => None,
                Slot::Hold => {
                    let mut changed = runtime.pace.subscribe();
                    changed.mark_unchanged();
                    if runtime.pace.next() == Slot::Hold {
                        let mut stop = self.stop.clone();
                        tokio::select! {
                            _ = changed.changed() => {}
                            _ = stop.wait_for(|s| *s) => break,
                        }
                    }
                    continue;
                }
            };
            let tx_idx = pick(&mut self.rng, &group.mix, total);
            let tx = &shared.plan.transactions[tx_idx];
            let want = match (&tx.body, group.stop_counts_rows) {
                (Body::Copy(c), true) => c.rows_per_tx,
                _ => 1,
            };
            let Some(granted) = runtime.quota.claim(want) else {
                break;
            };
            let copy_rows = match &tx.body {
                Body::Copy(c) if !group.stop_counts_rows => c.rows_per_tx,
                _ => granted,
            };
            let Some(done) = self.execute(&shared, tx_idx, copy_rows, group).await else {
                break;
            };
            let from = intended.unwrap_or(done.started);
            let sample = TxSample {
                tx: tx_idx as u16,
                group: self.group as u16,
                outcome: done.result.outcome,
                sqlstate: done.result.sqlstate,
                latency_us: done.ended.duration_since(from).as_micros() as u64,
                schedule_lag_us: intended
                    .map(|t| done.started.saturating_duration_since(t).as_micros() as u64),
                started: from,
                rows: done.result.rows,
                retries: done.retries,
                node: done.node as u8,
                client: self.id,
                key: done.key,
            };
            if !self.records.push(Record::Tx(sample)) {
                break;
            }
        }
    }

    /// Route and run one transaction, retrying serialization failures and deadlocks up to the
    /// group's max_tries with the same parameter values (as pgbench does). None if the run
    /// stopped before it could start.
    async fn execute(
        &mut self,
        shared: &Shared,
        tx_idx: usize,
        copy_rows: u64,
        group: &Group,
    ) -> Option<Done> {
        let tx = &shared.plan.transactions[tx_idx];
        let mut values = std::mem::take(&mut self.values);
        values.clear();
        values.extend(tx.params.iter().map(|(_, g)| g.sample(&mut self.rng)));
        let key = (shared.keys && tx.is_write()).then(|| {
            self.next_key += 1;
            self.next_key
        });
        let job = Job {
            idx: tx_idx as u16,
            tx,
            values: &values,
            copy_rows,
            ryw: group.read_your_writes,
            key,
        };
        let done = self.execute_with(shared, &job, group.max_tries).await;
        self.values = values;
        done
    }

    async fn execute_with(
        &mut self,
        shared: &Shared,
        job: &Job<'_>,
        max_tries: u32,
    ) -> Option<Done> {
        let mut first_start = None;
        let mut retries = 0;
        loop {
            let (node, started, result) = self.try_once(shared, job).await?;
            let started = *first_start.get_or_insert(started);
            let retry = result.outcome == Outcome::Failed
                && result
                    .sqlstate
                    .as_deref()
                    .is_some_and(super::outcome::retryable)
                && retries + 1 < max_tries;
            if retry {
                retries += 1;
                continue;
            }
            if result.outcome == Outcome::Ok && job.tx.is_write() {
                self.writes += 1;
                if let Some(l) = result.commit_lsn {
                    self.last_commit_lsn = Some(l);
                }
            }
            return Some(Done {
                node,
                started,
                ended: Instant::now(),
                result,
                retries,
                key: job.key,
            });
        }
    }

    /// One try: the node, when it started (connected, before any read_your_writes wait), and
    /// how it ended.
    async fn try_once(
        &mut self,
        shared: &Shared,
        job: &Job<'_>,
    ) -> Option<(usize, Instant, TxResult)> {
        let Job {
            idx,
            tx,
            values,
            copy_rows,
            ryw,
            key,
        } = *job;
        let key = key.map(|k| (self.id as i32, k));
        loop {
            self.follow_topology();
            let chosen = shared
                .router
                .choose(tx.target, &self.view, |n| shared.topology.usable(n));
            let Some(mut node) = chosen else {
                // No primary right now: wait for a promotion (or the end of the run).
                if !self.wait_for_roles(Duration::from_millis(200)).await {
                    return None;
                }
                continue;
            };
            let is_primary = Some(node) == self.view.primary();
            if !self.ensure_conn(node, is_primary).await {
                if self.stopped() {
                    return None;
                }
                continue;
            }
            let started = Instant::now();
            let primary = self.view.primary();
            if ryw && Some(node) != primary && tx.target != Target::Primary {
                if let (Some(lsn), Some(p)) = (self.last_commit_lsn, primary) {
                    node = self.fresh_node(node, p, lsn).await;
                    if !self.ensure_conn(node, node == p).await {
                        continue;
                    }
                }
            }
            let conn = self.conns[node].as_mut().expect("connected above");
            let result = match &tx.body {
                Body::Sql(statements) => {
                    let mut vars = Vars {
                        params: &tx.params,
                        values,
                        captured: Vec::new(),
                        client_id: Value::Int(i64::from(self.id)),
                        client_writes: Value::Int(self.writes),
                    };
                    let want_lsn = ryw && tx.is_write();
                    if tx.pipeline {
                        run_pipelined(conn, idx, statements, &vars, want_lsn, key).await
                    } else {
                        run_sql(conn, idx, statements, &mut vars, want_lsn, key).await
                    }
                }
                Body::Copy(spec) => run_copy(conn, idx, spec, copy_rows, &mut self.rng, key).await,
            };
            if conn.is_closed() {
                self.conns[node] = None;
                self.shared
                    .report_down(&self.view, node, "the connection was lost");
            }
            return Some((node, started, result));
        }
    }
}

/// One transaction to run, the same for every try of it.
#[derive(Clone, Copy)]
struct Job<'a> {
    idx: u16,
    tx: &'a Transaction,
    /// Its parameter values, drawn once (a retry sends the same).
    values: &'a [Value],
    copy_rows: u64,
    ryw: bool,
    /// Its key in the run's write log, if the run keeps one.
    key: Option<i64>,
}

/// A transaction that ended, after every try.
struct Done {
    node: usize,
    /// When the first try started.
    started: Instant,
    ended: Instant,
    result: TxResult,
    retries: u32,
    key: Option<i64>,
}

fn pick(rng: &mut SmallRng, mix: &[(usize, u32)], total: u32) -> usize {
    if mix.len() == 1 {
        return mix[0].0;
    }
    let mut r = rng.gen_range(0..total);
    for (idx, w) in mix {
        if r < *w {
            return *idx;
        }
        r -= w;
    }
    mix[mix.len() - 1].0
}
