//! Where a run's load goes: the lab (started when it is not running) or the `[cluster]` of
//! the workload file, as named endpoints and the description summary.json keeps.

use crate::cluster::ha::watch::{LabOrchestrator, Orchestrator};
use crate::cluster::{self, Lab, UpOptions};
use crate::error::usage;
use crate::pg::{describe, Endpoint};
use crate::record::summary::{ClusterInfo, HaInfo, LinkInfo, NodeAddress};
use crate::topology::Access;
use crate::workload::{Action, Workload};
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;

/// The nodes of a run: the first is the primary.
pub struct Targets {
    pub endpoints: Vec<Endpoint>,
    /// For each endpoint, the name the primary knows it by (application_name and slot).
    pub repl_names: Vec<String>,
    /// Where the load's writes and reads go when not to the nodes themselves.
    pub access: Access,
    pub lab: Option<Lab>,
    pub cluster: ClusterInfo,
    /// Who decides failovers: an orchestrated lab's orchestrator, or a `[cluster]`'s nodes
    /// watched; None on a plain lab, where the workload's `promote` events do.
    pub orchestrator: Option<Arc<dyn Orchestrator>>,
}

/// The lab (started first if its primary is not running) or the workload's [cluster].
pub async fn resolve(plan: &Workload, lab_dir: Option<&Path>) -> Result<Targets> {
    if let Some(c) = &plan.cluster {
        let mut endpoints = vec![Endpoint {
            name: "primary".into(),
            config: c.primary.clone(),
        }];
        for (i, s) in c.standbys.iter().enumerate() {
            endpoints.push(Endpoint {
                name: format!("standby{}", i + 1),
                config: s.clone(),
            });
        }
        // The load writes with the [cluster]'s primary string, as an application configured
        // with it would: through a proxy or a multi-host string it follows a failover.
        let access = Access {
            write: Some(endpoints[0].clone()),
            read: None,
        };
        let cluster = ClusterInfo {
            kind: "external".into(),
            nodes: addresses(&endpoints),
            ha: Some(HaInfo {
                kind: "observed".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let orchestrator: Arc<dyn Orchestrator> =
            Arc::new(super::observed::Observed::new(endpoints.clone()));
        return Ok(Targets {
            repl_names: endpoints.iter().map(|e| e.name.clone()).collect(),
            endpoints,
            access,
            lab: None,
            cluster,
            orchestrator: Some(orchestrator),
        });
    }
    let lab = Lab::locate(lab_dir);
    let running = lab.exists()
        && lab
            .state()
            .map(|s| cluster::status::primary_running(&lab, &s))
            .unwrap_or(false);
    if !running {
        crate::errln!("info: starting the lab at {}", lab.dir.display());
        cluster::up(&lab, &UpOptions::default()).await?;
    }
    let mut state = lab.state()?;
    if state.ha.is_some() {
        cluster::ha::refresh_roles(&lab, &mut state).await?;
    }
    let endpoints = lab_endpoints(&lab, false)?;
    let (write, read) = match &state.ha {
        Some(_) => cluster::ha::access(&lab, &state)?,
        None => (None, None),
    };
    let cluster = ClusterInfo {
        kind: "lab".into(),
        dir: Some(lab.dir.display().to_string()),
        sync: state.ha.is_none().then(|| state.sync.to_string()),
        nodes: addresses(&endpoints),
        links: Vec::new(),
        ha: state.ha.as_ref().map(|h| HaInfo {
            kind: h.kind.to_string(),
            ..Default::default()
        }),
        writes_via: write.as_ref().map(|e| describe(&e.config)),
        reads_via: read.as_ref().map(|e| describe(&e.config)),
    };
    let orchestrator = LabOrchestrator::of(&lab).map(|o| Arc::new(o) as Arc<dyn Orchestrator>);
    Ok(Targets {
        repl_names: endpoints
            .iter()
            .map(|e| cluster::ha::replication_name(&state, &e.name))
            .collect(),
        endpoints,
        access: Access { write, read },
        lab: Some(lab),
        cluster,
        orchestrator,
    })
}

/// The lab's nodes, the primary first; with `all`, a former primary that awaits a rejoin too.
pub fn lab_endpoints(lab: &Lab, all: bool) -> Result<Vec<Endpoint>> {
    let state = lab.state()?;
    let mut endpoints = Vec::new();
    let others = state
        .nodes
        .iter()
        .filter(|n| n.role == crate::cluster::Role::Standby);
    for n in std::iter::once(state.primary()).chain(others.filter(|n| all || !n.needs_rejoin)) {
        endpoints.push(Endpoint {
            name: n.name.clone(),
            config: lab
                .conn(&state, n.port)?
                .config(std::time::Duration::from_secs(5)),
        });
    }
    Ok(endpoints)
}

fn addresses(endpoints: &[Endpoint]) -> Vec<NodeAddress> {
    endpoints
        .iter()
        .map(|e| NodeAddress {
            name: e.name.clone(),
            at: describe(&e.config),
        })
        .collect()
}

/// The lab's links and sync mode now, for a run's summary.
pub async fn lab_now(lab: &Lab, cluster: &ClusterInfo) -> ClusterInfo {
    let state = lab.state().ok();
    if state.as_ref().is_some_and(|s| s.ha.is_some()) {
        return cluster.clone();
    }
    let links = lab.links().status().await.unwrap_or_default();
    ClusterInfo {
        sync: state.map(|s| s.sync.to_string()),
        links: links
            .into_iter()
            .map(|l| LinkInfo {
                node: l.node,
                delay_ms: l.settings.delay_us as f64 / 1000.0,
                rate: l.settings.rate,
                paused: l.settings.paused,
                cut: l.settings.cut,
            })
            .collect(),
        ..cluster.clone()
    }
}

/// Drill actions that name a node must name one of the run's; actions that drive the lab's
/// processes or links need the lab; in an orchestrated lab, the orchestrator's moves are its
/// own.
pub fn check_event_targets(plan: &Workload, targets: &Targets) -> Result<()> {
    let ha = match &targets.lab {
        Some(lab) => lab.state()?.ha.map(|h| h.kind),
        None => None,
    };
    for (i, e) in plan.events.iter().enumerate() {
        if let Some(why) = refused(&e.action, targets.lab.is_some(), ha) {
            return Err(usage(format!("{}: event[{i}].action: {why}", e.origin)));
        }
        let node = e.action.target();
        if !node.is_empty() && !targets.endpoints.iter().any(|n| n.name == node) {
            match &targets.lab {
                Some(lab) => {
                    cluster::require_node(&lab.state()?, &node)
                        .map_err(|err| usage(format!("{}: event[{i}].target: {err}", e.origin)))?;
                }
                None => {
                    let names: Vec<&str> =
                        targets.endpoints.iter().map(|n| n.name.as_str()).collect();
                    return Err(usage(format!(
                        "{}: event[{i}].target: no node '{node}' (nodes: {})",
                        e.origin,
                        names.join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Why an action cannot run where the run goes (None: it can).
fn refused(action: &Action, lab: bool, ha: Option<cluster::ha::HaKind>) -> Option<String> {
    let by_command = matches!(
        action,
        Action::Kill { by: Some(_), .. } | Action::Start { by: Some(_), .. }
    );
    let sql_only = matches!(
        action,
        Action::Exec { .. } | Action::SetSetting { .. } | Action::SetSync { mode: None, .. }
    );
    if !lab {
        return match action {
            Action::Kill { by: None, .. } | Action::Start { by: None, .. } => Some(
                "against a [cluster] a kill or start runs a command: give command = \"docker kill ...\" \
                 (or kubectl delete pod --force ...)"
                    .into(),
            ),
            Action::Switchover(_) => Some(
                "against a [cluster], ask its orchestrator with action = \"exec\" \
                 (patronictl switchover --force, pg_autoctl perform switchover)"
                    .into(),
            ),
            _ if sql_only || by_command => None,
            _ => Some(
                "this action needs the lab; against a [cluster] use action = \"exec\"".into(),
            ),
        };
    }
    let Some(kind) = ha else {
        return matches!(action, Action::Switchover(_)).then(|| {
            "a switchover is asked of an orchestrator: start the lab with `cluster up --ha \
             pg_auto_failover` or `--ha patroni`, or use kill and promote"
                .into()
        });
    };
    let instead = match action {
        Action::Promote(_) => "remove the promote event: after a kill of the primary the run watches for the node that takes writes (or use action = \"switchover\")",
        Action::Rejoin(_) | Action::Rebuild(_) => "start the node (action = \"start\") and the orchestrator rejoins it",
        Action::SetSync { mode: Some(_), .. } => "give the orchestrator's own setting with `cluster up --ha-setting`",
        Action::CutLink(_) | Action::HealLink(_) | Action::SetLink { .. } => "its standbys stream directly, not through the link shaper: pause_link and resume_link stop and continue a standby's WAL receiver",
        _ => return None,
    };
    Some(format!("the lab is run by {kind}: {instead}"))
}
