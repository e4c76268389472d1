//! A client's connections: one per node, opened on demand with backoff, prepared for what the
//! client may run there, and read_your_writes' check of a standby's replay position.

use super::{Client, RYW_WAIT};
use crate::exec::txn::prepare_control;
use crate::messages::{Counter, Record};
use crate::pg::format_lsn;
use crate::pg::wire::{WireConn as Conn, WireError};
use crate::workload::{Body, Target};
use std::time::Duration;
use tokio::time::Instant;

impl Client {
    /// Wait until the roles change or `limit` passes; false if the run stops first.
    pub(super) async fn wait_for_roles(&mut self, limit: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = self.roles.changed() => !*stop.borrow(),
            _ = tokio::time::sleep(limit) => !*stop.borrow(),
            _ = stop.changed() => false,
        }
    }

    /// Make sure there is a connection to `node`; on failure, back off when `backoff` (the
    /// primary, which nothing replaces). A standby that fails is skipped for a while by the
    /// router, so a read goes at once to another standby (or the primary) instead of
    /// sleeping: a pool's behaviour, not a client stuck on a dead replica.
    pub(super) async fn ensure_conn(&mut self, node: usize, backoff: bool) -> bool {
        if self.conns[node].as_ref().is_some_and(|c| !c.is_closed()) {
            return true;
        }
        if self.try_connect(node).await {
            return true;
        }
        if !backoff {
            return false;
        }
        // Back off, but come back at once when the roles change (a promotion: the node to
        // reach is another one now), so reconnecting adds nothing to a failover's measured time.
        let backoff = Duration::from_millis(50) * 2u32.pow(self.failures[node].min(6));
        let backoff = backoff.min(Duration::from_secs(2));
        self.wait_for_roles(backoff).await;
        false
    }

    /// One connection attempt to `node`; the outcome is counted and told to the topology.
    pub(super) async fn try_connect(&mut self, node: usize) -> bool {
        let shared = self.shared.clone();
        let sync = shared
            .plan
            .synchronous_commit
            .as_deref()
            .filter(|_| Some(node) == self.view.primary());
        match self.view.connect_endpoint(node).connect_wire(sync).await {
            Ok(mut conn) => {
                // Prepare what this client may run on this node now, not in its first
                // transaction's latency. A failure here shows up again, as a measurement,
                // when the transaction runs.
                let _ = self.prepare_for(&mut conn, node).await;
                if self.failures[node] > 0 {
                    self.records.push(Record::Count(Counter::Reconnect));
                }
                self.failures[node] = 0;
                self.conns[node] = Some(conn);
                shared.report_up(&self.view, node);
                true
            }
            Err(e) => {
                self.records.push(Record::Count(Counter::ConnectFailure));
                shared.report_down(&self.view, node, &format!("{e:#}"));
                self.failures[node] += 1;
                false
            }
        }
    }

    async fn prepare_for(&self, conn: &mut Conn, node: usize) -> Result<(), WireError> {
        let plan = &self.shared.plan;
        let is_primary = Some(node) == self.view.primary();
        let mut brackets = false;
        for (idx, _) in &plan.groups[self.group].mix {
            let tx = &plan.transactions[*idx];
            let reachable = is_primary || tx.target != Target::Primary;
            if !reachable {
                continue;
            }
            // A drill's key goes into a write's transaction between BEGIN and COMMIT.
            brackets |= self.shared.keys && tx.is_write();
            if let Body::Sql(statements) = &tx.body {
                brackets |= statements.len() > 1 || tx.pipeline;
                for (i, st) in statements.iter().enumerate() {
                    conn.statement(*idx as u16, i as u16, &st.text).await?;
                }
            }
        }
        if brackets {
            prepare_control(conn).await?;
        }
        Ok(())
    }

    /// read_your_writes: `node` if it has replayed `lsn` (waiting up to RYW_WAIT), else the
    /// primary.
    pub(super) async fn fresh_node(&mut self, node: usize, primary: usize, lsn: u64) -> usize {
        let records = self.records.clone();
        let query = format!(
            "SELECT pg_last_wal_replay_lsn() >= '{}'::pg_lsn",
            format_lsn(lsn)
        );
        let deadline = Instant::now() + RYW_WAIT;
        let mut waited = false;
        loop {
            let Some(conn) = self.conns[node].as_mut() else {
                return primary;
            };
            let fresh = match conn.simple(&query).await {
                Ok(answer) => answer.as_deref() == Some("t"),
                Err(_) => return primary,
            };
            if fresh {
                let c = if waited {
                    Counter::RywWaited
                } else {
                    Counter::RywChecked
                };
                records.push(Record::Count(c));
                return node;
            }
            if Instant::now() >= deadline {
                records.push(Record::Count(Counter::RywFallback));
                return primary;
            }
            waited = true;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}
