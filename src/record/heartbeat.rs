//! The heartbeat's lag per standby (DESIGN section 16), worked out from what the writer
//! committed and what each standby showed: heartbeat k's visibility lag on a node is when the
//! node first showed k minus when k committed. A state machine: no I/O, no clock.

use std::collections::VecDeque;

/// Recent commits and each node's progress through them.
#[derive(Debug, Default)]
pub struct HeartbeatTracker {
    /// (k, committed at), oldest first; kept until every node seen so far has shown it.
    committed: VecDeque<(u64, f64)>,
    /// Per node: the highest k it has shown and the lag of the last heartbeat it showed.
    nodes: Vec<(String, u64, Option<f64>)>,
    /// Heartbeats committed, and WAL per heartbeat.
    pub beats: u64,
    pub wal_per_beat: Option<u64>,
}

impl HeartbeatTracker {
    pub fn committed(&mut self, k: u64, t_s: f64) {
        if self.committed.back().is_none_or(|(last, _)| k > *last) {
            self.committed.push_back((k, t_s));
            self.beats += 1;
        }
    }

    /// `node` showed heartbeat `k` first at `t_s`: the lags of the heartbeats it showed
    /// for the first time (every one up to `k`).
    pub fn seen(&mut self, node: &str, k: u64, t_s: f64) -> Vec<f64> {
        let i = match self.nodes.iter().position(|(n, _, _)| n == node) {
            Some(i) => i,
            None => {
                self.nodes.push((node.to_string(), 0, None));
                self.nodes.len() - 1
            }
        };
        let before = self.nodes[i].1;
        if k <= before {
            return Vec::new();
        }
        let lags: Vec<f64> = self
            .committed
            .iter()
            .filter(|(j, _)| *j > before && *j <= k)
            .map(|(_, c)| (t_s - c).max(0.0))
            .collect();
        self.nodes[i].1 = k;
        if let Some(l) = lags.last() {
            self.nodes[i].2 = Some(*l);
        }
        self.prune();
        lags
    }

    /// Commits every node has shown are no longer needed.
    fn prune(&mut self) {
        let Some(min) = self.nodes.iter().map(|(_, k, _)| *k).min() else {
            return;
        };
        while self.committed.len() > 1 && self.committed.front().is_some_and(|(k, _)| *k <= min) {
            self.committed.pop_front();
        }
    }

    /// The lag on `node` at `t_s`: the last heartbeat's, or, when the oldest heartbeat it has
    /// not shown is older than that, its age (a stalled standby's lag keeps growing). None
    /// before the first heartbeat.
    pub fn current(&self, node: &str, t_s: f64) -> Option<f64> {
        let (seen_k, last) = self
            .nodes
            .iter()
            .find(|(n, _, _)| n == node)
            .map(|(_, k, l)| (*k, *l))
            .unwrap_or((0, None));
        let waiting = self
            .committed
            .iter()
            .find(|(k, _)| *k > seen_k)
            .map(|(_, c)| (t_s - c).max(0.0));
        match (last, waiting) {
            (Some(l), Some(w)) => Some(l.max(w)),
            (Some(l), None) => Some(l),
            // Never seen: its age only once it is older than a heartbeat normally takes.
            (None, w) => w,
        }
    }

    /// Heartbeats committed from `from_s` on (the measured part), for their WAL.
    pub fn wal_bytes(&self, beats_measured: u64) -> Option<u64> {
        self.wal_per_beat.map(|w| w * beats_measured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_heartbeat_lags_from_its_commit_to_when_the_node_first_showed_it() {
        let mut h = HeartbeatTracker::default();
        h.committed(1, 1.0);
        h.committed(2, 1.1);
        let first = h.seen("standby1", 1, 1.02);
        assert!(
            first.len() == 1 && (first[0] - 0.02).abs() < 1e-9,
            "{first:?}"
        );
        // Seen 2 and 3 at once: both lags, each from its own commit.
        h.committed(3, 1.2);
        let lags = h.seen("standby1", 3, 1.25);
        assert_eq!(lags.len(), 2);
        assert!(
            (lags[0] - 0.15).abs() < 1e-9 && (lags[1] - 0.05).abs() < 1e-9,
            "{lags:?}"
        );
        assert!(h.seen("standby1", 3, 1.3).is_empty(), "shown already");
        assert!((h.current("standby1", 1.26).unwrap() - 0.05).abs() < 1e-9);
    }

    #[test]
    fn a_stalled_node_lags_more_and_more_never_frozen() {
        let mut h = HeartbeatTracker::default();
        h.committed(1, 1.0);
        h.seen("standby1", 1, 1.01);
        h.seen("standby2", 1, 1.01);
        for k in 2..=50 {
            h.committed(k, 1.0 + k as f64 * 0.1);
            h.seen("standby1", k, 1.0 + k as f64 * 0.1 + 0.01);
        }
        // standby2 showed nothing after heartbeat 1 (committed at 1.0): from 1.2 on, the
        // oldest it lacks (2, at 1.2) ages.
        let a = h.current("standby2", 4.0).unwrap();
        let b = h.current("standby2", 6.0).unwrap();
        assert!((a - 2.8).abs() < 1e-9 && (b - 4.8).abs() < 1e-9, "{a} {b}");
        assert!((h.current("standby1", 6.0).unwrap() - 0.01).abs() < 1e-9);
        // A node never seen ages from the oldest heartbeat still waited on (2, at 1.2: the
        // first was shown by every node known and let go).
        assert!((h.current("standby3", 2.0).unwrap() - 0.8).abs() < 1e-9);
        assert_eq!(h.beats, 50);
    }
}
