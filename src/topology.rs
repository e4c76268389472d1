//! The run's one owner of "which node is what": every node's role, the primary's timeline, a
//! generation number bumped by every role change, and each node's health as the clients see
//! it. Clients, the router, the sampler and the drill timeline read it; only promotions,
//! rejoins and health reports change it. Readers subscribe to a `watch` channel, so after a
//! promotion they all see the same new primary.

use crate::pg::Endpoint;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What a node is, as far as the run knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    Primary,
    Standby,
    /// A former primary that a standby was promoted over: out of the load until rejoined.
    Failed,
}

/// One node of the run.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub endpoint: Endpoint,
    pub role: NodeRole,
    /// The name the primary knows it by as a standby (application_name and slot).
    pub repl_name: String,
}

/// Where applications reach the primary and the standbys when not at the nodes themselves:
/// a proxy's write and read ports (HAProxy in front of Patroni), or a multi-host string with
/// target_session_attrs=read-write (pg_auto_failover, a `[cluster]`). The load connects
/// there; the sampler still asks each node directly.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub write: Option<Endpoint>,
    pub read: Option<Endpoint>,
}

/// A snapshot of the nodes: cheap to clone, the same for every reader of one generation.
#[derive(Debug, Clone)]
pub struct View {
    /// Bumped by every role change: connections opened before it are to be reopened.
    pub generation: u64,
    pub nodes: Arc<[NodeInfo]>,
    /// The primary's timeline, as the sampler last saw it.
    pub timeline: Option<u32>,
    pub access: Arc<Access>,
}

impl View {
    /// The index of the primary (None when no node has that role).
    pub fn primary(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.role == NodeRole::Primary)
    }

    /// Indices of the standbys, in node order.
    pub fn standbys(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|i| self.nodes[*i].role == NodeRole::Standby)
    }

    pub fn name(&self, node: usize) -> &str {
        &self.nodes[node].name
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Where the load connects for `node` in its role now: the access endpoint of the role
    /// when there is one, else the node itself.
    pub fn connect_endpoint(&self, node: usize) -> &Endpoint {
        let n = &self.nodes[node];
        let via = match n.role {
            NodeRole::Primary => self.access.write.as_ref(),
            NodeRole::Standby => self.access.read.as_ref(),
            NodeRole::Failed => None,
        };
        via.unwrap_or(&n.endpoint)
    }

    /// The load's writes go through an access endpoint (a proxy or a multi-host string):
    /// a write then lands wherever that endpoint leads, whichever node the run thinks is the
    /// primary.
    pub fn writes_via_access(&self) -> bool {
        self.access.write.is_some()
    }
}

/// How long a node that failed is skipped before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_millis(1000);

/// One node's health as the clients report it.
#[derive(Debug, Default)]
struct Health {
    down: AtomicBool,
    /// Microseconds since the topology's origin until which the node is skipped.
    skip_until: AtomicU64,
}

/// The owner. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Topology {
    tx: watch::Sender<View>,
    /// The view's generation, readable without the channel's lock (clients check it before
    /// every transaction).
    generation: AtomicU64,
    health: Vec<Health>,
    origin: Instant,
}

/// What a health report changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthChange {
    None,
    WentDown,
    CameBack,
}

impl Topology {
    /// The nodes of a run: the first is the primary, the others standbys.
    pub fn new(nodes: Vec<(String, Endpoint)>) -> Self {
        Topology::with_access(nodes, Vec::new(), Access::default())
    }

    /// With the names the primary knows the standbys by (`repl_names[i]` for node i; a
    /// missing one is the node's name) and where the load connects.
    pub fn with_access(
        nodes: Vec<(String, Endpoint)>,
        repl_names: Vec<String>,
        access: Access,
    ) -> Self {
        let infos: Vec<NodeInfo> = nodes
            .into_iter()
            .enumerate()
            .map(|(i, (name, endpoint))| NodeInfo {
                repl_name: repl_names.get(i).cloned().unwrap_or_else(|| name.clone()),
                name,
                endpoint,
                role: if i == 0 {
                    NodeRole::Primary
                } else {
                    NodeRole::Standby
                },
            })
            .collect();
        let health = infos.iter().map(|_| Health::default()).collect();
        let view = View {
            generation: 0,
            nodes: infos.into(),
            timeline: None,
            access: Arc::new(access),
        };
        Topology {
            tx: watch::channel(view).0,
            generation: AtomicU64::new(0),
            health,
            origin: Instant::now(),
        }
    }

    /// The current snapshot.
    pub fn view(&self) -> View {
        self.tx.borrow().clone()
    }

    /// The current generation (bumped by every role change).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<View> {
        self.tx.subscribe()
    }

    /// `name` is the primary now; the old primary is failed until rejoined. Returns the new
    /// primary's index, or why not.
    pub fn promote(&self, name: &str) -> Result<usize, String> {
        let view = self.view();
        let node = view
            .index_of(name)
            .ok_or_else(|| format!("{name} is not a node of this run"))?;
        if view.nodes[node].role == NodeRole::Primary {
            return Err(format!("{name} is the primary already"));
        }
        self.change_roles(|i, n| {
            if i == node {
                NodeRole::Primary
            } else if n.role == NodeRole::Primary {
                NodeRole::Failed
            } else {
                n.role
            }
        });
        self.mark_usable(node);
        Ok(node)
    }

    /// A planned switchover: `name` is the primary now and the old primary a standby.
    pub fn switch_to(&self, name: &str) -> Result<usize, String> {
        let view = self.view();
        let node = view
            .index_of(name)
            .ok_or_else(|| format!("{name} is not a node of this run"))?;
        if view.nodes[node].role == NodeRole::Primary {
            return Err(format!("{name} is the primary already"));
        }
        self.change_roles(|i, n| match (i == node, n.role) {
            (true, _) => NodeRole::Primary,
            (false, NodeRole::Primary) => NodeRole::Standby,
            (false, role) => role,
        });
        self.mark_usable(node);
        Ok(node)
    }

    /// `name` streams again as a standby (after a rejoin or a rebuild).
    pub fn rejoin(&self, name: &str) -> Result<usize, String> {
        let node = self
            .view()
            .index_of(name)
            .ok_or_else(|| format!("{name} is not a node of this run"))?;
        self.change_roles(|i, n| if i == node { NodeRole::Standby } else { n.role });
        Ok(node)
    }

    fn change_roles(&self, role: impl Fn(usize, &NodeInfo) -> NodeRole) {
        self.tx.send_modify(|v| {
            let nodes: Vec<NodeInfo> = v
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| NodeInfo {
                    role: role(i, n),
                    ..n.clone()
                })
                .collect();
            v.nodes = nodes.into();
            v.generation += 1;
            self.generation.store(v.generation, Ordering::Release);
        });
    }

    /// The sampler saw the primary on this timeline.
    pub fn observe_timeline(&self, timeline: u32) {
        self.tx.send_if_modified(|v| {
            let changed = v.timeline != Some(timeline);
            v.timeline = Some(timeline);
            changed
        });
    }

    fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// False while a node that failed is being skipped.
    pub fn usable(&self, node: usize) -> bool {
        self.health[node].skip_until.load(Ordering::Relaxed) <= self.now_us()
    }

    fn mark_usable(&self, node: usize) {
        self.health[node].skip_until.store(0, Ordering::Relaxed);
    }

    /// A connection to `node` failed or broke: skip it for a while.
    pub fn report_down(&self, node: usize) -> HealthChange {
        let until = self.now_us() + RETRY_AFTER.as_micros() as u64;
        let h = &self.health[node];
        h.skip_until.store(until, Ordering::Relaxed);
        if h.down.swap(true, Ordering::Relaxed) {
            HealthChange::None
        } else {
            HealthChange::WentDown
        }
    }

    /// A connection to `node` worked.
    pub fn report_up(&self, node: usize) -> HealthChange {
        let h = &self.health[node];
        if h.down.swap(false, Ordering::Relaxed) {
            h.skip_until.store(0, Ordering::Relaxed);
            HealthChange::CameBack
        } else {
            HealthChange::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(port: u16) -> Endpoint {
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(port);
        Endpoint {
            name: format!("n{port}"),
            config,
        }
    }

    fn topo() -> Topology {
        Topology::new(vec![
            ("primary".into(), ep(1)),
            ("standby1".into(), ep(2)),
            ("standby2".into(), ep(3)),
        ])
    }

    #[test]
    fn promotion_moves_the_primary_and_fails_the_old_one() {
        let t = topo();
        let mut rx = t.subscribe();
        assert_eq!(t.view().primary(), Some(0));
        assert_eq!(t.promote("standby2"), Ok(2));
        assert!(rx.has_changed().unwrap());
        let v = rx.borrow_and_update().clone();
        assert_eq!(v.generation, 1);
        assert_eq!(v.primary(), Some(2));
        assert_eq!(v.nodes[0].role, NodeRole::Failed);
        assert_eq!(v.standbys().collect::<Vec<_>>(), [1]);
        assert!(t.promote("nope").is_err());
        assert!(t.promote("standby2").is_err());
        assert_eq!(t.view().generation, 1);
        assert_eq!(t.rejoin("primary"), Ok(0));
        assert_eq!(t.view().standbys().collect::<Vec<_>>(), [0, 1]);
        assert_eq!(t.view().generation, 2);
    }

    #[test]
    fn the_timeline_is_no_role_change() {
        let t = topo();
        t.observe_timeline(2);
        assert_eq!(t.view().timeline, Some(2));
        assert_eq!(t.view().generation, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn health_reports_say_what_changed_and_skip_for_a_while() {
        let t = topo();
        assert_eq!(t.report_down(1), HealthChange::WentDown);
        assert_eq!(t.report_down(1), HealthChange::None);
        assert!(!t.usable(1));
        tokio::time::advance(RETRY_AFTER + Duration::from_millis(1)).await;
        assert!(t.usable(1), "tried again after RETRY_AFTER");
        assert_eq!(t.report_up(1), HealthChange::CameBack);
        assert_eq!(t.report_up(1), HealthChange::None);
    }
}
