//! Which node is the primary right now. A promotion during a run (a drill) moves the load: node
//! 0, where writes go, then reaches the promoted node, which serves no more standby reads.

use super::conn::Endpoint;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use tokio::sync::watch;

/// The endpoints of a run: index 0 is the primary, then the standbys.
pub struct Topology {
    endpoints: RwLock<Vec<Endpoint>>,
    /// Bumped by every change, so clients and the sampler know to reconnect.
    generation: AtomicU64,
    /// Wakes clients that are backing off from a node that is gone.
    changed: watch::Sender<u64>,
}

impl Topology {
    pub fn new(endpoints: Vec<Endpoint>) -> Self {
        Topology {
            endpoints: RwLock::new(endpoints),
            generation: AtomicU64::new(0),
            changed: watch::channel(0).0,
        }
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Endpoint>> {
        self.endpoints.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn endpoint(&self, node: usize) -> Endpoint {
        self.read()[node].clone()
    }

    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.read().clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The node named `name` is the primary now; returns its index (None if unknown).
    pub fn promote(&self, name: &str) -> Option<usize> {
        let mut e = self.endpoints.write().unwrap_or_else(|e| e.into_inner());
        let node = e.iter().position(|n| n.name == name).filter(|n| *n > 0)?;
        e[0].config = e[node].config.clone();
        let g = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.changed.send_replace(g);
        Some(node)
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(name: &str, port: u16) -> Endpoint {
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(port);
        Endpoint {
            name: name.into(),
            config,
        }
    }

    #[test]
    fn promotion_moves_node_0() {
        let t = Topology::new(vec![ep("primary", 1), ep("standby1", 2), ep("standby2", 3)]);
        assert_eq!(t.promote("standby2"), Some(2));
        assert_eq!(t.endpoint(0).config.get_ports(), &[3]);
        assert_eq!(t.generation(), 1);
        assert_eq!(t.promote("nope"), None);
        assert_eq!(t.generation(), 1);
    }
}
