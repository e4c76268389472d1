//! The drill timeline: `[[event]]` actions at their times, undone after `for`, each recorded.

use super::messages::{EventRecord, Record};
use crate::cluster::{self, Lab};
use crate::link::protocol::Request;
use crate::units::format_duration;
use crate::workload::{Action, Event};
use anyhow::{anyhow, Result};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Run the events (and their undos) in time order until the run stops.
pub async fn run_timeline(
    events: Vec<Event>,
    lab: Option<Lab>,
    shared: std::sync::Arc<super::Shared>,
    start: Instant,
    records: mpsc::Sender<Record>,
    mut stop: watch::Receiver<bool>,
) {
    let mut steps: Vec<(Duration, Action, bool)> = Vec::new();
    for e in events {
        steps.push((e.at, e.action.clone(), false));
        if let Some(f) = e.for_ {
            if let Some(undo) = undo_of(&e.action, lab.as_ref()).await {
                steps.push((e.at + f, undo, true));
            }
        }
    }
    steps.sort_by_key(|s| s.0);
    for (at, action, is_undo) in steps {
        if !*stop.borrow() {
            tokio::select! {
                _ = tokio::time::sleep_until(start + at) => {}
                _ = stop.changed() => {}
            }
        }
        // Once the run stops, only the undos still run (at once), so a drill never leaves a
        // link paused or a node stopped behind it.
        if *stop.borrow() && !is_undo {
            continue;
        }
        let began = Instant::now();
        let (kind, mut node) = describe(&action);
        let result = perform(&action, lab.as_ref()).await;
        let result = match (result, &action) {
            (Ok(detail), Action::Promote(_)) => {
                let name = detail.trim_end_matches(" promoted").to_string();
                node = name.clone();
                if shared.follow_promotion(&name) {
                    Ok(format!("{detail}; the load's writes go to {name} now"))
                } else {
                    Ok(detail)
                }
            }
            (r, _) => r,
        };
        let took = format_duration(began.elapsed());
        let detail = match result {
            Ok(d) => format!("{}{d} ({took})", if is_undo { "undo: " } else { "" }),
            Err(e) => format!("failed: {e:#}"),
        };
        let _ = records
            .send(Record::Event(EventRecord {
                at: began,
                kind: kind.into(),
                node,
                detail,
            }))
            .await;
    }
}

/// The action that undoes `action` after its `for`.
async fn undo_of(action: &Action, lab: Option<&Lab>) -> Option<Action> {
    Some(match action {
        Action::PauseLink(n) => Action::ResumeLink(n.clone()),
        Action::CutLink(n) => Action::HealLink(n.clone()),
        Action::Kill(n) => Action::Start(n.clone()),
        Action::SetLink { node, .. } => {
            let links = lab?.links().status().await.ok()?;
            let l = links.into_iter().find(|l| &l.node == node)?;
            Action::SetLink {
                node: node.clone(),
                delay: Some(Duration::from_micros(l.settings.delay_us)),
                rate: Some(l.settings.rate),
            }
        }
        Action::SetSync(_) => Action::SetSync(lab?.state().ok()?.sync),
        Action::Exec { undo: Some(u), .. } => Action::Exec {
            command: u.clone(),
            undo: None,
        },
        _ => return None,
    })
}

fn describe(action: &Action) -> (&'static str, String) {
    match action {
        Action::PauseLink(n) => ("pause_link", n.clone()),
        Action::ResumeLink(n) => ("resume_link", n.clone()),
        Action::CutLink(n) => ("cut_link", n.clone()),
        Action::HealLink(n) => ("heal_link", n.clone()),
        Action::SetLink { node, .. } => ("set_link", node.clone()),
        Action::Kill(n) => ("kill", n.clone()),
        Action::Promote(n) => ("promote", n.clone().unwrap_or_default()),
        Action::Rejoin(n) => ("rejoin", n.clone()),
        Action::SetSync(_) => ("set_sync", String::new()),
        Action::Start(n) => ("start", n.clone()),
        Action::Exec { .. } => ("exec", String::new()),
    }
}

fn need_lab(lab: Option<&Lab>) -> Result<&Lab> {
    lab.ok_or_else(|| {
        anyhow!("this action needs the lab; against another cluster use action = \"exec\"")
    })
}

async fn perform(action: &Action, lab: Option<&Lab>) -> Result<String> {
    let link = |req: Request, said: &'static str| async move {
        need_lab(lab)?.links().send(&req).await?;
        Ok::<String, anyhow::Error>(said.to_string())
    };
    match action {
        Action::PauseLink(n) => {
            link(
                Request::Pause { node: n.clone() },
                "forwarding stopped, connections kept open",
            )
            .await
        }
        Action::ResumeLink(n) => {
            link(Request::Resume { node: n.clone() }, "forwarding again").await
        }
        Action::CutLink(n) => {
            link(
                Request::Cut { node: n.clone() },
                "connections reset, new ones refused",
            )
            .await
        }
        Action::HealLink(n) => {
            link(
                Request::Heal { node: n.clone() },
                "connections allowed again",
            )
            .await
        }
        Action::SetLink { node, delay, rate } => {
            link(
                Request::Set {
                    node: node.clone(),
                    delay_us: delay.map(|d| d.as_micros() as u64),
                    rate: *rate,
                },
                "",
            )
            .await?;
            Ok(format!(
                "delay {} rate {}",
                delay
                    .map(format_duration)
                    .unwrap_or_else(|| "unchanged".into()),
                rate.map(|r| format!("{r}B/s"))
                    .unwrap_or_else(|| "unchanged".into())
            ))
        }
        Action::Kill(n) => {
            let lab = need_lab(lab)?.clone();
            let n = n.clone();
            tokio::task::spawn_blocking(move || cluster::kill(&lab, &n)).await??;
            Ok("immediate stop".into())
        }
        Action::Promote(n) => {
            let lab = need_lab(lab)?;
            let name = match n {
                Some(n) => n.clone(),
                None => cluster::most_advanced_standby(lab).await?,
            };
            cluster::promote(lab, &name, false).await?;
            Ok(format!("{name} promoted"))
        }
        Action::Rejoin(n) => {
            cluster::rejoin(need_lab(lab)?, n).await?;
            Ok("rewound and streaming".into())
        }
        Action::SetSync(mode) => {
            cluster::set_sync(need_lab(lab)?, *mode).await?;
            Ok(format!("sync {mode}"))
        }
        Action::Start(n) => {
            let lab = need_lab(lab)?.clone();
            let n = n.clone();
            tokio::task::spawn_blocking(move || cluster::start_node(&lab, &n)).await??;
            Ok("started".into())
        }
        Action::Exec { command, .. } => {
            let out = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .output()
                .await?;
            if !out.status.success() {
                return Err(anyhow!(
                    "`{command}` exited with {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(format!("`{command}`"))
        }
    }
}
