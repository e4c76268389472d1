//! `pgbench-repl cluster verify [WORKLOAD.toml]`: the lab's nodes, or a workload's [cluster].

use crate::cluster::{node_running, Lab};
use crate::config::load_workload;
use crate::consistency::{self, VerifyReport};
use crate::error::CheckFailed;
use crate::pg::Endpoint;
use anyhow::Result;
use std::path::Path;
use std::time::Duration;

pub async fn verify(workload: Option<&Path>, lab_dir: Option<&Path>, json: bool) -> Result<()> {
    let nodes = match workload.map(|w| load_workload(w, &[])).transpose()? {
        Some(plan) if plan.cluster.is_some() => {
            let c = plan.cluster.expect("checked");
            std::iter::once(c.primary)
                .chain(c.standbys)
                .enumerate()
                .map(|(i, config)| Endpoint {
                    name: if i == 0 {
                        "primary".into()
                    } else {
                        format!("standby{i}")
                    },
                    config,
                })
                .collect()
        }
        _ => lab_nodes(&Lab::locate(lab_dir)).await?,
    };
    let report = consistency::verify(&nodes, Duration::from_secs(60)).await?;
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        crate::out!("{}", consistency::render(&report));
    }
    outcome(&report)
}

/// Exit 3 when the nodes differ.
pub fn outcome(report: &VerifyReport) -> Result<()> {
    if report.consistent {
        return Ok(());
    }
    let mut why = report.differences.clone();
    why.extend(
        report
            .behind
            .iter()
            .map(|n| format!("{n} did not catch up")),
    );
    why.extend(
        report
            .unreachable
            .iter()
            .map(|n| format!("{n} did not answer")),
    );
    Err(CheckFailed(format!("the nodes differ:\n  {}", why.join("\n  "))).into())
}

/// The lab's running nodes, the primary first (a second primary of a split brain included).
async fn lab_nodes(lab: &Lab) -> Result<Vec<Endpoint>> {
    let mut state = lab.state()?;
    if state.ha.is_some() {
        crate::cluster::ha::refresh_roles(lab, &mut state).await?;
    }
    let primary = state.primary().name.clone();
    let mut names = vec![primary.clone()];
    names.extend(
        state
            .nodes
            .iter()
            .filter(|n| n.name != primary && node_running(lab, &n.name))
            .map(|n| n.name.clone()),
    );
    names
        .into_iter()
        .map(|name| {
            let port = state.node(&name).expect("a lab node").port;
            Ok(Endpoint {
                config: lab.conn(&state, port)?.config(Duration::from_secs(5)),
                name,
            })
        })
        .collect()
}
