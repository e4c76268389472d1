//! Routing: which node a transaction runs on, given the roles of the moment and which nodes
//! are usable. Pure: the topology says who is what, the health check says who answers.

use crate::topology::View;
use crate::workload::Target;
use std::sync::atomic::{AtomicU64, Ordering};

/// Round-robin over the candidates of a target, shared by every client of the run.
#[derive(Debug, Default)]
pub struct Router {
    next: AtomicU64,
}

impl Router {
    /// The node for a transaction with this target: writes go to the primary; standby reads
    /// round-robin over the usable standbys (the primary when none is); `any` over the primary
    /// and the standbys. None when the run has no primary right now.
    pub fn choose(
        &self,
        target: Target,
        view: &View,
        usable: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let primary = view.primary();
        let mut candidates: Vec<usize> = match target {
            Target::Primary => return primary,
            Target::Standby => view.standbys().collect(),
            Target::Any => primary.into_iter().chain(view.standbys()).collect(),
        };
        if candidates.is_empty() {
            return primary;
        }
        let first = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        let len = candidates.len();
        candidates.rotate_left(first % len);
        candidates.into_iter().find(|n| usable(*n)).or(primary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::Endpoint;
    use crate::topology::Topology;

    fn topology(standbys: usize) -> Topology {
        let ep = |p: u16| {
            let mut config = tokio_postgres::Config::new();
            config.host("127.0.0.1").port(p);
            Endpoint {
                name: String::new(),
                config,
            }
        };
        let mut nodes = vec![("primary".to_string(), ep(1))];
        for i in 1..=standbys {
            nodes.push((format!("standby{i}"), ep(1 + i as u16)));
        }
        Topology::new(nodes)
    }

    fn picks(r: &Router, t: Target, v: &View, usable: impl Fn(usize) -> bool + Copy) -> Vec<usize> {
        (0..6).map(|_| r.choose(t, v, usable).unwrap()).collect()
    }

    #[test]
    fn writes_go_to_the_primary_reads_round_robin_over_standbys() {
        let t = topology(2);
        let r = Router::default();
        let v = t.view();
        assert_eq!(r.choose(Target::Primary, &v, |_| true), Some(0));
        assert_eq!(picks(&r, Target::Standby, &v, |_| true), [1, 2, 1, 2, 1, 2]);
        let mut any = picks(&Router::default(), Target::Any, &v, |_| true);
        any.sort();
        assert_eq!(any, [0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn a_down_standby_is_skipped_and_none_left_means_the_primary() {
        let t = topology(2);
        let r = Router::default();
        let v = t.view();
        assert_eq!(picks(&r, Target::Standby, &v, |n| n != 1), [2; 6]);
        assert_eq!(picks(&r, Target::Standby, &v, |n| n == 0), [0; 6]);
        assert_eq!(
            topology(0).view().standbys().count(),
            0,
            "a run without standbys"
        );
        assert_eq!(
            r.choose(Target::Standby, &topology(0).view(), |_| true),
            Some(0)
        );
    }

    #[test]
    fn after_a_promotion_writes_follow_and_the_old_primary_gets_nothing() {
        let t = topology(2);
        t.promote("standby1").unwrap();
        let v = t.view();
        let r = Router::default();
        assert_eq!(r.choose(Target::Primary, &v, |_| true), Some(1));
        assert_eq!(picks(&r, Target::Standby, &v, |_| true), [2; 6]);
        let any = picks(&r, Target::Any, &v, |_| true);
        assert!(!any.contains(&0), "{any:?}");
    }
}
