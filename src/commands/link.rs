//! `pgbench-repl link ...`

use crate::cli::LinkCommand;
use crate::cluster::{Lab, LabState};
use crate::link::protocol::Request;
use crate::link::server;
use crate::link::LinkStatus;
use crate::units::format_duration;
use anyhow::Result;
use std::time::Duration;

pub async fn run(cmd: LinkCommand) -> Result<()> {
    let (lab, req, json) = match cmd {
        LinkCommand::Serve { lab } => {
            let lab = Lab::locate(lab.dir.as_deref());
            let state = lab.state()?;
            return server::serve(crate::cluster::shaper_config(&lab, &state)).await;
        }
        LinkCommand::Status { json, lab } => (lab, Request::Status, json),
        LinkCommand::Set {
            node,
            delay,
            rate,
            lab,
        } => (
            lab,
            Request::Set {
                node,
                delay_us: delay.map(|d| d.as_micros() as u64),
                rate,
            },
            false,
        ),
        LinkCommand::Pause { node, lab } => (lab, Request::Pause { node }, false),
        LinkCommand::Resume { node, lab } => (lab, Request::Resume { node }, false),
        LinkCommand::Cut { node, lab } => (lab, Request::Cut { node }, false),
        LinkCommand::Heal { node, lab } => (lab, Request::Heal { node }, false),
    };
    let lab = Lab::locate(lab.dir.as_deref());
    let state = lab.state()?;
    if state.ha.is_some() {
        if matches!(req, Request::Status) {
            let stalled = crate::cluster::ha::stall::stalled(&lab);
            crate::outln!(
                "an orchestrated lab has no link shaper; standbys whose WAL receiver is stopped: {}",
                if stalled.is_empty() { "none".into() } else { stalled.join(", ") }
            );
            return Ok(());
        }
        return crate::cluster::link(&lab, &req).await;
    }
    let links = lab.links().send(&req).await?;
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&links)?);
    } else {
        crate::out!("{}", render(&state, &links));
    }
    Ok(())
}

/// The links of the nodes that are standbys now (a primary's link carries nothing).
fn render(state: &LabState, links: &[LinkStatus]) -> String {
    let mut out = format!(
        "{:<10} {:>6} {:>8} {:>10} {:>8} {:>6} {:>5} {:>12} {:>12}\n",
        "node", "listen", "upstream", "delay", "rate", "paused", "cut", "to_primary", "to_node"
    );
    for l in links {
        let is_standby = state
            .node(&l.node)
            .map(|n| n.role == crate::cluster::Role::Standby)
            .unwrap_or(false);
        if !is_standby {
            continue;
        }
        let s = &l.settings;
        out.push_str(&format!(
            "{:<10} {:>6} {:>8} {:>10} {:>8} {:>6} {:>5} {:>12} {:>12}\n",
            l.node,
            l.listen_port,
            s.upstream_port,
            format_duration(Duration::from_micros(s.delay_us)),
            if s.rate == 0 {
                "-".to_string()
            } else {
                format!("{}B/s", s.rate)
            },
            s.paused,
            s.cut,
            l.bytes_to_upstream,
            l.bytes_to_node
        ));
    }
    out
}
