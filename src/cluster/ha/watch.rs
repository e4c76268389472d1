//! What a run asks of whoever decides failovers: who takes writes now, when (by its own
//! record) a promotion began, why none happened, a switchover, whether a node rejoined, and
//! the timeouts in force. An orchestrated lab answers from its orchestrator; a `[cluster]`
//! answers from what its nodes say (`session::observed`).

use super::{autofailover, patroni, HaKind};
use crate::cluster::Lab;
use anyhow::Result;
use async_trait::async_trait;
use indexmap::IndexMap;
use std::time::{Duration, SystemTime};

/// Whoever decides failovers during a run.
#[async_trait]
pub trait Orchestrator: Send + Sync {
    /// `pg_auto_failover`, `patroni`, or `observed` (a `[cluster]`: only its nodes are seen).
    fn decided_by(&self) -> &'static str;
    /// The node that takes writes now (None: none does, or the orchestrator cannot say).
    async fn writer(&self) -> Option<String>;
    /// When the promotion of `node` began, at or after `since`, by the orchestrator's own
    /// record (None: it keeps none).
    async fn promotion_began(&self, node: &str, since: SystemTime) -> Option<SystemTime>;
    /// Why no node has taken over from `killed`, in the orchestrator's own words.
    async fn why_not(&self, killed: &str) -> String;
    /// A planned switchover (to `target` if named): the new primary, once it is in place.
    async fn switchover(&self, target: Option<&str>) -> Result<String>;
    /// `node` streams again as a standby.
    async fn rejoined(&self, node: &str) -> bool;
    /// The timeouts in force.
    async fn settings(&self) -> IndexMap<String, String>;
    /// The setting that bounds how long detection takes, and its value in seconds.
    fn detection_setting(&self, settings: &IndexMap<String, String>) -> Option<(String, f64)>;
}

/// The orchestrator of an orchestrated lab.
pub struct LabOrchestrator {
    lab: Lab,
    kind: HaKind,
}

impl LabOrchestrator {
    /// None for a plain lab (the tool promotes).
    pub fn of(lab: &Lab) -> Option<LabOrchestrator> {
        let kind = lab.state().ok()?.ha?.kind;
        Some(LabOrchestrator {
            lab: lab.clone(),
            kind,
        })
    }
}

/// A setting's value (as saved, e.g. `5s`) in seconds.
pub fn seconds(settings: &IndexMap<String, String>, name: &str) -> Option<f64> {
    let v = settings.get(name)?;
    crate::units::parse_duration(v)
        .ok()
        .map(|d| d.as_secs_f64())
        .or_else(|| v.parse::<f64>().ok())
}

#[async_trait]
impl Orchestrator for LabOrchestrator {
    fn decided_by(&self) -> &'static str {
        self.kind.name()
    }

    async fn writer(&self) -> Option<String> {
        let state = self.lab.state().ok()?;
        match self.kind {
            HaKind::PgAutoFailover => autofailover::view(&self.lab, &state).await.primary,
            HaKind::Patroni => patroni::writer(&self.lab, &state).await,
        }
    }

    async fn promotion_began(&self, node: &str, since: SystemTime) -> Option<SystemTime> {
        let state = self.lab.state().ok()?;
        match self.kind {
            HaKind::PgAutoFailover => {
                autofailover::failover_began(&self.lab, &state, node, since).await
            }
            HaKind::Patroni => patroni::promotion_began(&self.lab, &state, node, since).await,
        }
    }

    async fn why_not(&self, killed: &str) -> String {
        let Ok(state) = self.lab.state() else {
            return "the lab's state cannot be read".into();
        };
        match self.kind {
            HaKind::PgAutoFailover => autofailover::why_not(&self.lab, &state, killed).await,
            HaKind::Patroni => patroni::why_not(&self.lab, &state, killed).await,
        }
    }

    async fn switchover(&self, target: Option<&str>) -> Result<String> {
        let state = self.lab.state()?;
        super::switchover(&self.lab, &state, target).await
    }

    async fn rejoined(&self, node: &str) -> bool {
        let Ok(state) = self.lab.state() else {
            return false;
        };
        match self.kind {
            HaKind::PgAutoFailover => {
                let v = super::view(&self.lab, &state).await;
                v.primary.as_deref().is_some_and(|p| p != node)
                    && v.nodes
                        .iter()
                        .any(|n| n.name == node && n.role == "secondary" && n.state == "secondary")
            }
            HaKind::Patroni => patroni::rejoined(&self.lab, &state, node).await,
        }
    }

    async fn settings(&self) -> IndexMap<String, String> {
        match self.lab.state() {
            Ok(state) => super::view(&self.lab, &state).await.settings,
            Err(_) => IndexMap::new(),
        }
    }

    fn detection_setting(&self, settings: &IndexMap<String, String>) -> Option<(String, f64)> {
        let name = match self.kind {
            HaKind::PgAutoFailover => "node_considered_unhealthy_timeout",
            HaKind::Patroni => "ttl",
        };
        seconds(settings, name).map(|s| (name.to_string(), s))
    }
}

/// How often a run asks who takes writes while it waits for a failover.
pub const POLL: Duration = Duration::from_millis(100);
