//! Routing: which node a transaction runs on, and which nodes are down right now.

use super::messages::{EventRecord, Record};
use crate::workload::Target;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a node that failed is skipped before it is tried again.
const RETRY_AFTER: Duration = Duration::from_millis(1000);

/// Shared view of node health, fed by the clients' connection failures.
pub struct Router {
    names: Vec<String>,
    down: Vec<AtomicBool>,
    /// Microseconds since `origin` until which the node is skipped.
    skip_until: Vec<AtomicU64>,
    next: AtomicU64,
    origin: Instant,
    records: mpsc::Sender<Record>,
}

impl Router {
    /// Nodes: index 0 is the primary, then the standbys.
    pub fn new(names: Vec<String>, records: mpsc::Sender<Record>) -> Self {
        let n = names.len();
        Router {
            names,
            down: (0..n).map(|_| AtomicBool::new(false)).collect(),
            skip_until: (0..n).map(|_| AtomicU64::new(0)).collect(),
            next: AtomicU64::new(0),
            origin: Instant::now(),
            records,
        }
    }

    pub fn name(&self, node: usize) -> &str {
        &self.names[node]
    }

    fn usable(&self, node: usize) -> bool {
        let now = self.origin.elapsed().as_micros() as u64;
        self.skip_until[node].load(Ordering::Relaxed) <= now
    }

    /// The node for a transaction with this target: standbys round-robin, skipping the ones
    /// that are down; the primary when no standby is usable.
    pub fn choose(&self, target: Target) -> usize {
        let standbys = self.names.len() - 1;
        let candidates: usize = match target {
            Target::Primary => return 0,
            Target::Standby if standbys == 0 => return 0,
            Target::Standby => standbys,
            Target::Any => standbys + 1,
        };
        let first = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        for k in 0..candidates {
            let i = (first + k) % candidates;
            let node = if target == Target::Standby { i + 1 } else { i };
            if self.usable(node) {
                return node;
            }
        }
        0
    }

    /// A connection to `node` failed or broke: skip it for a while; say so once.
    pub fn mark_down(&self, node: usize, why: &str) {
        let until = self.origin.elapsed().as_micros() as u64 + RETRY_AFTER.as_micros() as u64;
        self.skip_until[node].store(until, Ordering::Relaxed);
        if !self.down[node].swap(true, Ordering::Relaxed) {
            let detail = if node == 0 {
                format!("primary unreachable: {why}")
            } else {
                format!("standby reads go to the other standbys or the primary: {why}")
            };
            self.event("node_down", node, detail);
        }
    }

    /// `node` is no longer a standby (it was promoted): never route reads to it again.
    pub fn retire(&self, node: usize) {
        self.skip_until[node].store(u64::MAX, Ordering::Relaxed);
        self.down[node].store(true, Ordering::Relaxed);
    }

    /// A connection to `node` worked: if it was down, say it is back.
    pub fn mark_up(&self, node: usize) {
        if self.skip_until[node].load(Ordering::Relaxed) == u64::MAX {
            return; // retired
        }
        if self.down[node].swap(false, Ordering::Relaxed) {
            self.skip_until[node].store(0, Ordering::Relaxed);
            self.event("node_up", node, "connections succeed again".into());
        }
    }

    fn event(&self, kind: &str, node: usize, detail: String) {
        let _ = self.records.try_send(Record::Event(EventRecord {
            at: Instant::now(),
            kind: kind.into(),
            node: self.names[node].clone(),
            detail,
        }));
    }
}
