//! Where a run's load goes: the lab (started when it is not running) or the `[cluster]` of
//! the workload file, as named endpoints and the description summary.json keeps.

use crate::cluster::{self, Lab, UpOptions};
use crate::error::usage;
use crate::pg::{describe, Endpoint};
use crate::record::summary::{ClusterInfo, LinkInfo, NodeAddress};
use crate::workload::Workload;
use anyhow::Result;
use std::path::Path;

/// The nodes of a run: the first is the primary.
pub struct Targets {
    pub endpoints: Vec<Endpoint>,
    pub lab: Option<Lab>,
    pub cluster: ClusterInfo,
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
        let cluster = ClusterInfo {
            kind: "external".into(),
            nodes: addresses(&endpoints),
            ..Default::default()
        };
        return Ok(Targets {
            endpoints,
            lab: None,
            cluster,
        });
    }
    let lab = Lab::locate(lab_dir);
    let running = lab.exists()
        && lab
            .state()
            .map(|s| cluster::status::primary_running(&lab, &s))
            .unwrap_or(false);
    if !running {
        eprintln!("info: starting the lab at {}", lab.dir.display());
        cluster::up(&lab, &UpOptions::default()).await?;
    }
    let state = lab.state()?;
    let endpoints = lab_endpoints(&lab, false)?;
    let cluster = ClusterInfo {
        kind: "lab".into(),
        dir: Some(lab.dir.display().to_string()),
        sync: Some(state.sync.to_string()),
        nodes: addresses(&endpoints),
        links: Vec::new(),
    };
    Ok(Targets {
        endpoints,
        lab: Some(lab),
        cluster,
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
    let links = lab.links().status().await.unwrap_or_default();
    ClusterInfo {
        sync: lab.state().ok().map(|s| s.sync.to_string()),
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
/// processes or links need the lab.
pub fn check_event_targets(plan: &Workload, targets: &Targets) -> Result<()> {
    use crate::workload::Action;
    for (i, e) in plan.events.iter().enumerate() {
        let node = super::timeline::target_of(&e.action);
        let sql_only = matches!(
            e.action,
            Action::Exec { .. } | Action::SetSetting { .. } | Action::SetSync { mode: None, .. }
        );
        if !sql_only && targets.lab.is_none() {
            return Err(usage(format!(
                "event[{i}]: this action needs the lab; against a [cluster] use action = \"exec\""
            )));
        }
        if !node.is_empty() && !targets.endpoints.iter().any(|n| n.name == node) {
            match &targets.lab {
                Some(lab) => {
                    cluster::require_node(&lab.state()?, &node)
                        .map_err(|e| usage(format!("event[{i}].target: {e}")))?;
                }
                None => {
                    let names: Vec<&str> =
                        targets.endpoints.iter().map(|n| n.name.as_str()).collect();
                    return Err(usage(format!(
                        "event[{i}].target: no node '{node}' (nodes: {})",
                        names.join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}
