//! One client: picks transactions from its group's mix, routes them, runs them, reconnects
//! with backoff after a connection loss, and sends every outcome to the recorder.

use super::conn::Conn;
use super::messages::{Counter, Record, TxSample};
use super::pacer::{Quota, Schedule};
use super::router::Router;
use super::txn::{run_copy, run_sql, TxResult, Vars};
use crate::workload::value::Value;
use crate::workload::{Body, Group, Target, Workload};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How long a read_your_writes read waits for a standby before it goes to the primary.
pub const RYW_WAIT: Duration = Duration::from_millis(50);

/// A group's shared pacing state. The schedule is set when the load starts (after every
/// client has connected), so connection set-up never shows as schedule lag.
pub struct GroupRuntime {
    pub quota: Quota,
    pub schedule: std::sync::OnceLock<Schedule>,
}

/// What every client shares.
pub struct Shared {
    pub plan: Arc<Workload>,
    pub topology: Arc<super::Topology>,
    pub router: Router,
    pub records: mpsc::Sender<Record>,
    pub groups: Vec<GroupRuntime>,
}

impl Shared {
    /// A standby was promoted: writes go to it from now on, and standby reads no longer do.
    /// Returns false when `name` is not one of the run's standbys.
    pub fn follow_promotion(&self, name: &str) -> bool {
        match self.topology.promote(name) {
            Some(node) => {
                self.router.retire(node);
                true
            }
            None => false,
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
    stop: watch::Receiver<bool>,
    /// The topology generation the connections were opened for.
    generation: u64,
}

/// Connect one client, report ready, wait for the start, then run it until the run stops or
/// its group's budget is spent.
pub async fn run_client(
    shared: Arc<Shared>,
    group: usize,
    id: u32,
    ready: mpsc::Sender<()>,
    mut start: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) {
    let seed = shared.plan.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(id);
    let nodes = shared.topology.len();
    let mut c = Client {
        shared,
        group,
        id,
        rng: SmallRng::seed_from_u64(seed),
        conns: (0..nodes).map(|_| None).collect(),
        failures: vec![0; nodes],
        last_commit_lsn: None,
        writes: 0,
        stop,
        generation: 0,
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
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleep until `t`, or return false if the run stops first.
    async fn sleep_until(&mut self, t: Instant) -> bool {
        tokio::select! {
            _ = tokio::time::sleep_until(t) => !self.stopped(),
            _ = self.stop.changed() => false,
        }
    }

    /// After a promotion, drop every connection: the next transactions reconnect to the nodes
    /// as they are now (writes to the new primary).
    fn follow_topology(&mut self) {
        let g = self.shared.topology.generation();
        if g != self.generation {
            self.generation = g;
            self.conns.iter_mut().for_each(|c| *c = None);
            self.last_commit_lsn = None;
        }
    }

    /// Open the connections this client will use (primary, and standbys if its mix reads
    /// there). Failures are left for the run to retry.
    async fn warm_up(&mut self) {
        let shared = self.shared.clone();
        let plan = &shared.plan;
        let reads_standbys = plan.groups[self.group]
            .mix
            .iter()
            .any(|(i, _)| plan.transactions[*i].target != Target::Primary);
        let nodes = if reads_standbys {
            shared.topology.len()
        } else {
            1
        };
        for node in 0..nodes {
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
            let intended = match runtime.schedule.get() {
                Some(s) => {
                    let t = s.next();
                    if t > Instant::now() && !self.sleep_until(t).await {
                        break;
                    }
                    Some(t)
                }
                None => None,
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
            let Some((node, started, mut result)) = self
                .execute(tx_idx, copy_rows, group.read_your_writes)
                .await
            else {
                break;
            };
            let end = Instant::now();
            let from = intended.unwrap_or(started);
            if result.outcome == super::messages::Outcome::Ok && tx.is_write() {
                self.writes += 1;
                if let Some(l) = result.commit_lsn.take() {
                    self.last_commit_lsn = Some(l);
                }
            }
            let sample = TxSample {
                tx: tx_idx as u16,
                group: self.group as u16,
                outcome: result.outcome,
                sqlstate: result.sqlstate.take(),
                latency_us: end.duration_since(from).as_micros() as u64,
                schedule_lag_us: intended
                    .map(|t| started.saturating_duration_since(t).as_micros() as u64),
                started: from,
                rows: result.rows,
                node: node as u8,
            };
            if shared.records.send(Record::Tx(sample)).await.is_err() {
                break;
            }
        }
    }

    /// Route and run one transaction; None if the run stopped before it could start.
    /// Returns the node, the moment it started (connected, before any read_your_writes wait)
    /// and how it ended.
    async fn execute(
        &mut self,
        tx_idx: usize,
        copy_rows: u64,
        ryw: bool,
    ) -> Option<(usize, Instant, TxResult)> {
        let shared = self.shared.clone();
        let tx = &shared.plan.transactions[tx_idx];
        loop {
            let mut node = shared.router.choose(tx.target);
            if !self.ensure_conn(node).await {
                if self.stopped() {
                    return None;
                }
                continue;
            }
            let started = Instant::now();
            if ryw && node != 0 && tx.target != Target::Primary {
                if let Some(lsn) = self.last_commit_lsn {
                    node = self.fresh_node(node, lsn).await;
                    if !self.ensure_conn(node).await {
                        continue;
                    }
                }
            }
            let conn = self.conns[node].as_mut().expect("connected above");
            let result = match &tx.body {
                Body::Sql(statements) => {
                    let mut vars = Vars {
                        params: &tx.params,
                        values: tx
                            .params
                            .iter()
                            .map(|(_, g)| g.sample(&mut self.rng))
                            .collect(),
                        captured: Vec::new(),
                        client_id: Value::Int(i64::from(self.id)),
                        client_writes: Value::Int(self.writes),
                    };
                    let want_lsn = ryw && tx.is_write();
                    run_sql(conn, tx_idx as u16, tx, statements, &mut vars, want_lsn).await
                }
                Body::Copy(spec) => {
                    run_copy(conn, tx_idx as u16, spec, copy_rows, &mut self.rng).await
                }
            };
            if conn.is_closed() {
                self.conns[node] = None;
                shared.router.mark_down(node, "the connection was lost");
            }
            return Some((node, started, result));
        }
    }

    /// Make sure there is a connection to `node`; on failure, mark it down and back off.
    async fn ensure_conn(&mut self, node: usize) -> bool {
        if self.conns[node].as_ref().is_some_and(|c| !c.is_closed()) {
            return true;
        }
        if self.try_connect(node).await {
            return true;
        }
        // Back off, but come back at once when the topology changes (a promotion: the node to
        // reach is another one now), so reconnecting adds nothing to a failover's measured time.
        let backoff = Duration::from_millis(50) * 2u32.pow(self.failures[node].min(6));
        let mut changed = self.shared.topology.subscribe();
        changed.mark_unchanged();
        tokio::select! {
            _ = self.sleep_until(Instant::now() + backoff.min(Duration::from_secs(2))) => {}
            _ = changed.changed() => self.failures[node] = 0,
        }
        false
    }

    /// One connection attempt to `node`; the outcome is counted and told to the router.
    async fn try_connect(&mut self, node: usize) -> bool {
        let shared = self.shared.clone();
        let sync = shared
            .plan
            .synchronous_commit
            .as_deref()
            .filter(|_| node == 0);
        match shared.topology.endpoint(node).connect(sync).await {
            Ok(mut conn) => {
                // Prepare what this client may run on this node now, not in its first
                // transaction's latency. A failure here shows up again, as a measurement,
                // when the transaction runs.
                let _ = self.prepare_for(&mut conn, node).await;
                if self.failures[node] > 0 {
                    let _ = shared.records.send(Record::Count(Counter::Reconnect)).await;
                }
                self.failures[node] = 0;
                self.conns[node] = Some(conn);
                shared.router.mark_up(node);
                true
            }
            Err(e) => {
                let _ = shared
                    .records
                    .send(Record::Count(Counter::ConnectFailure))
                    .await;
                shared.router.mark_down(node, &format!("{e:#}"));
                self.failures[node] += 1;
                false
            }
        }
    }

    async fn prepare_for(&self, conn: &mut Conn, node: usize) -> Result<(), tokio_postgres::Error> {
        let plan = &self.shared.plan;
        for (idx, _) in &plan.groups[self.group].mix {
            let tx = &plan.transactions[*idx];
            let reachable = node == 0 || tx.target != Target::Primary;
            if let (true, Body::Sql(statements)) = (reachable, &tx.body) {
                for (i, st) in statements.iter().enumerate() {
                    conn.statement(*idx as u16, i as u16, &st.text).await?;
                }
            }
        }
        Ok(())
    }

    /// read_your_writes: `node` if it has replayed `lsn` (waiting up to RYW_WAIT), else the primary.
    async fn fresh_node(&mut self, node: usize, lsn: u64) -> usize {
        let records = self.shared.records.clone();
        let query = format!(
            "SELECT pg_last_wal_replay_lsn() >= '{:X}/{:X}'::pg_lsn",
            lsn >> 32,
            lsn & 0xFFFF_FFFF
        );
        let deadline = Instant::now() + RYW_WAIT;
        let mut waited = false;
        loop {
            let Some(conn) = self.conns[node].as_ref() else {
                return 0;
            };
            let fresh = match conn.client.simple_query(&query).await {
                Ok(msgs) => msgs.iter().any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("t"))),
                Err(_) => return 0,
            };
            if fresh {
                let c = if waited {
                    Counter::RywWaited
                } else {
                    Counter::RywChecked
                };
                let _ = records.send(Record::Count(c)).await;
                return node;
            }
            if Instant::now() >= deadline {
                let _ = records.send(Record::Count(Counter::RywFallback)).await;
                return 0;
            }
            waited = true;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
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
