//! A `[cluster]`'s failovers, observed: whoever promotes there (Patroni, pg_auto_failover,
//! CloudNativePG, an operator with a runbook), the tool sees only its nodes. The node that
//! answers out of recovery is the one that takes writes; there is no record of when its
//! promotion began, so a failover's detection and promotion are not split.

use crate::cluster::ha::watch::Orchestrator;
use crate::error::usage;
use crate::pg::Endpoint;
use anyhow::Result;
use async_trait::async_trait;
use indexmap::IndexMap;
use std::time::{Duration, SystemTime};

/// The nodes of a `[cluster]`, watched.
pub struct Observed {
    /// The primary's string first, then the standbys.
    endpoints: Vec<Endpoint>,
}

impl Observed {
    pub fn new(endpoints: Vec<Endpoint>) -> Self {
        Observed { endpoints }
    }

    /// `pg_is_in_recovery()` of a node; None when it does not answer within a second.
    async fn in_recovery(e: &Endpoint) -> Option<bool> {
        let ask = async {
            let c = e.connect(None).await.ok()?;
            let row = c
                .client
                .query_one("SELECT pg_is_in_recovery()", &[])
                .await
                .ok()?;
            Some(row.get::<_, bool>(0))
        };
        tokio::time::timeout(Duration::from_secs(1), ask)
            .await
            .ok()
            .flatten()
    }

    async fn states(&self) -> Vec<(String, Option<bool>)> {
        let asks = self.endpoints[1..]
            .iter()
            .map(|e| async move { (e.name.clone(), Self::in_recovery(e).await) });
        futures_util::future::join_all(asks).await
    }
}

#[async_trait]
impl Orchestrator for Observed {
    fn decided_by(&self) -> &'static str {
        "observed"
    }

    /// The first listed standby that answers out of recovery: the primary's own string may
    /// lead anywhere (a proxy, several hosts), so it names no node.
    async fn writer(&self) -> Option<String> {
        self.states()
            .await
            .into_iter()
            .find(|(_, r)| *r == Some(false))
            .map(|(n, _)| n)
    }

    async fn promotion_began(&self, _node: &str, _since: SystemTime) -> Option<SystemTime> {
        None
    }

    async fn why_not(&self, _killed: &str) -> String {
        let seen: Vec<String> = self
            .states()
            .await
            .into_iter()
            .map(|(n, r)| match r {
                Some(true) => format!("{n} is still in recovery"),
                Some(false) => format!("{n} is out of recovery"),
                None => format!("{n} does not answer"),
            })
            .collect();
        format!(
            "no standby of the [cluster] left recovery: {}",
            if seen.is_empty() {
                "it lists none".into()
            } else {
                seen.join("; ")
            }
        )
    }

    async fn switchover(&self, _target: Option<&str>) -> Result<String> {
        Err(usage(
            "a switchover is asked of an orchestrator: against a [cluster], run it with an \
             `exec` event (`patronictl switchover --force`, `pg_autoctl perform switchover`)",
        ))
    }

    async fn rejoined(&self, node: &str) -> bool {
        match self.endpoints.iter().find(|e| e.name == node) {
            Some(e) => Self::in_recovery(e).await == Some(true),
            None => false,
        }
    }

    async fn settings(&self) -> IndexMap<String, String> {
        IndexMap::new()
    }

    fn detection_setting(&self, _settings: &IndexMap<String, String>) -> Option<(String, f64)> {
        None
    }
}
