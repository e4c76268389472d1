//! The drill timeline: `[[event]]` actions at their times, undone after `for`, each recorded
//! with what it did and how long it took. Lab actions and shell commands run as child
//! processes with timeouts, never on the load's threads; a role change goes to the topology,
//! which every client and the sampler follow.

use super::failover_watch::{follow, Watch};
use super::settings;
use crate::cluster::ha::watch::Orchestrator;
use crate::cluster::{self, Lab};
use crate::link::protocol::Request;
use crate::messages::{EventRecord, Record};
use crate::topology::Topology;
use crate::units::format_duration;
use crate::workload::{Action, Event, Shell};
use anyhow::{anyhow, Result};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The longest a lab action (promote, rejoin, start) may take before it counts as hung.
const LAB_ACTION_LIMIT: Duration = Duration::from_secs(600);

/// One step of the timeline.
struct Step {
    at: Duration,
    action: Action,
    is_undo: bool,
}

/// What the timeline works on.
pub struct Timeline {
    pub lab: Option<Lab>,
    pub topology: Arc<Topology>,
    pub records: mpsc::Sender<Record>,
    /// Who decides failovers: an orchestrator (or a `[cluster]`'s nodes) the run watches
    /// after a kill of the primary. None: the workload's `promote` events decide.
    pub orchestrator: Option<Arc<dyn Orchestrator>>,
}

impl Timeline {
    /// Run the events (and their undos) in time order until the run stops. Once it stops, an
    /// action in progress is abandoned (its processes killed) and only the undos still run,
    /// at once, so a drill never leaves a link paused or a node stopped behind it.
    pub async fn run(self, events: Vec<Event>, start: Instant, mut stop: watch::Receiver<bool>) {
        let mut steps = Vec::new();
        for e in events {
            steps.push(Step {
                at: e.at,
                action: e.action.clone(),
                is_undo: false,
            });
            if let Some(f) = e.for_ {
                if let Some(undo) = self.undo_of(&e.action).await {
                    steps.push(Step {
                        at: e.at + f,
                        action: undo,
                        is_undo: true,
                    });
                }
            }
        }
        steps.sort_by_key(|s| s.at);
        let mut followers = tokio::task::JoinSet::new();
        for step in steps {
            if !*stop.borrow() {
                tokio::select! {
                    _ = tokio::time::sleep_until(start + step.at) => {}
                    _ = stop.changed() => {}
                }
            }
            if *stop.borrow() && !step.is_undo {
                continue;
            }
            let began = Instant::now();
            let began_wall = SystemTime::now();
            let primary_before = self.primary_name();
            let result = if step.is_undo {
                self.perform(&step.action).await
            } else {
                let mut stop = stop.clone();
                tokio::select! {
                    r = self.perform(&step.action) => r,
                    _ = stop.wait_for(|s| *s) => Err(anyhow!("abandoned: the run stopped")),
                }
            };
            let ok = result.is_ok();
            self.record(&step, began, result).await;
            match (&step.action, ok, &self.orchestrator, self.lab.clone()) {
                (Action::Promote(_), true, None, Some(lab)) => {
                    // The load writes to the new primary already; the other standbys follow
                    // it meanwhile, beside the next events (which may be what lets them).
                    followers.spawn(follow(lab, self.records.clone(), stop.clone()));
                }
                (Action::Kill { node, .. }, true, Some(o), _)
                    if primary_before.as_deref() == Some(node.as_str()) =>
                {
                    // Nothing promotes but the orchestrator: watch for the node that takes
                    // writes, and move the load there.
                    let watch = self.watch(o);
                    followers.spawn(watch.failover(node.clone(), began_wall, stop.clone()));
                }
                (Action::Start { node, .. }, true, Some(o), _) if self.is_failed(node) => {
                    let watch = self.watch(o);
                    followers.spawn(watch.rejoin(node.clone(), began, stop.clone()));
                }
                _ => {}
            }
        }
        while followers.join_next().await.is_some() {}
    }

    fn watch(&self, orchestrator: &Arc<dyn Orchestrator>) -> Watch {
        Watch {
            orchestrator: orchestrator.clone(),
            topology: self.topology.clone(),
            records: self.records.clone(),
        }
    }

    fn primary_name(&self) -> Option<String> {
        let view = self.topology.view();
        view.primary().map(|p| view.name(p).to_string())
    }

    /// A former primary that a failover left out of the load.
    fn is_failed(&self, node: &str) -> bool {
        let view = self.topology.view();
        view.index_of(node)
            .is_some_and(|i| view.nodes[i].role == crate::topology::NodeRole::Failed)
    }

    async fn record(&self, step: &Step, began: Instant, result: Result<(String, String)>) {
        let node = step.action.target();
        self.record_kind(step.action.kind(), step.is_undo, began, result, node)
            .await;
    }

    async fn record_kind(
        &self,
        kind: &str,
        is_undo: bool,
        began: Instant,
        result: Result<(String, String)>,
        node_if_failed: String,
    ) {
        let elapsed = began.elapsed();
        let took = format_duration(elapsed);
        let undo = if is_undo { "undo: " } else { "" };
        let (node, detail, took) = match result {
            Ok((node, d)) => (node, format!("{undo}{d} ({took})"), Some(elapsed)),
            Err(e) => (
                node_if_failed,
                format!("{undo}failed after {took}: {e:#}"),
                None,
            ),
        };
        let _ = self
            .records
            .send(Record::Event(EventRecord {
                at: began,
                kind: kind.into(),
                node,
                detail,
                took,
                undo: is_undo,
            }))
            .await;
    }

    /// The action that undoes `action` after its `for`.
    async fn undo_of(&self, action: &Action) -> Option<Action> {
        Some(match action {
            Action::PauseLink(n) => Action::ResumeLink(n.clone()),
            Action::CutLink(n) => Action::HealLink(n.clone()),
            Action::Kill { node, by: None, .. } => Action::Start {
                node: node.clone(),
                by: None,
            },
            Action::Kill {
                node,
                undo_by: Some(u),
                ..
            } => Action::Start {
                node: node.clone(),
                by: Some(u.clone()),
            },
            Action::SetLink { node, .. } => {
                let links = self.lab.as_ref()?.links().status().await.ok()?;
                let l = links.into_iter().find(|l| &l.node == node)?;
                Action::SetLink {
                    node: node.clone(),
                    delay: Some(Duration::from_micros(l.settings.delay_us)),
                    rate: Some(l.settings.rate),
                }
            }
            Action::SetSync { mode, commit } => Action::SetSync {
                mode: match mode {
                    Some(_) => Some(self.lab.as_ref()?.state().ok()?.sync),
                    None => None,
                },
                commit: match commit {
                    Some(_) => Some(self.current_setting(None, "synchronous_commit").await?),
                    None => None,
                },
            },
            Action::SetSetting { node, name, .. } => Action::SetSetting {
                node: node.clone(),
                name: name.clone(),
                value: self.current_setting(node.as_deref(), name).await?,
            },
            Action::Exec {
                undo: Some(u),
                timeout,
                ..
            } => Action::Exec {
                command: u.clone(),
                undo: None,
                timeout: *timeout,
            },
            _ => return None,
        })
    }

    fn lab(&self) -> Result<&Lab> {
        self.lab.as_ref().ok_or_else(|| {
            anyhow!("this action needs the lab; against another cluster use action = \"exec\"")
        })
    }

    /// Do it: (the node it was about, what it did).
    async fn perform(&self, action: &Action) -> Result<(String, String)> {
        let node = action.target();
        let detail = match action {
            Action::PauseLink(n) => {
                self.link(Request::Pause { node: n.clone() }).await?;
                match self.orchestrated() {
                    true => "its WAL receiver stopped (SIGSTOP), its connection kept open".into(),
                    false => "forwarding stopped, connections kept open".into(),
                }
            }
            Action::ResumeLink(n) => {
                self.link(Request::Resume { node: n.clone() }).await?;
                match self.orchestrated() {
                    true => "its WAL receiver goes on (SIGCONT)".into(),
                    false => "forwarding again".into(),
                }
            }
            Action::CutLink(n) => {
                self.link(Request::Cut { node: n.clone() }).await?;
                "connections reset, new ones refused".into()
            }
            Action::HealLink(n) => {
                self.link(Request::Heal { node: n.clone() }).await?;
                "connections allowed again".into()
            }
            Action::SetLink { node, delay, rate } => {
                let req = Request::Set {
                    node: node.clone(),
                    delay_us: delay.map(|d| d.as_micros() as u64),
                    rate: *rate,
                };
                self.link(req).await?;
                format!(
                    "delay {} rate {}",
                    delay
                        .map(format_duration)
                        .unwrap_or_else(|| "unchanged".into()),
                    rate.map(|r| format!("{r}B/s"))
                        .unwrap_or_else(|| "unchanged".into())
                )
            }
            Action::Kill { by: Some(sh), .. } | Action::Start { by: Some(sh), .. } => {
                run_shell(sh).await?;
                format!("`{}`", sh.command)
            }
            Action::Kill { node, by: None, .. } => {
                let lab = self.lab()?;
                cluster::kill(lab, node).await?;
                match lab.state()?.ha {
                    Some(h) => format!(
                        "{node}'s {} agent and its PostgreSQL killed (SIGKILL)",
                        h.kind
                    ),
                    None => "immediate stop".into(),
                }
            }
            Action::Start { node, by: None } => {
                self.limited(cluster::start_node(self.lab()?, node, true))
                    .await?;
                "started".into()
            }
            Action::Promote(n) => return self.promote(n.as_deref()).await,
            Action::Switchover(target) => return self.switchover(target.as_deref()).await,
            Action::Rejoin(n) => {
                self.limited(cluster::rejoin(self.lab()?, n)).await?;
                let _ = self.topology.rejoin(n);
                "rewound and streaming".into()
            }
            Action::SetSync { mode, commit } => {
                let mut did = Vec::new();
                if let Some(mode) = mode {
                    self.limited(cluster::set_sync(self.lab()?, *mode)).await?;
                    did.push(format!("sync {mode}"));
                }
                if let Some(level) = commit {
                    let primary = self.endpoint(None)?;
                    let change = self
                        .limited(settings::apply_on(
                            &primary,
                            self.lab.as_ref(),
                            "synchronous_commit",
                            level,
                        ))
                        .await?;
                    did.push(format!(
                        "synchronous_commit {} on {} (was {})",
                        level, primary.name, change.previous
                    ));
                }
                did.join(", ")
            }
            Action::SetSetting {
                node: target,
                name,
                value,
            } => {
                let endpoint = self.endpoint(target.as_deref())?;
                let change = self
                    .limited(settings::apply_on(
                        &endpoint,
                        self.lab.as_ref(),
                        name,
                        value,
                    ))
                    .await?;
                let how = if change.needs_restart {
                    "restarted"
                } else {
                    "reloaded"
                };
                format!(
                    "{name} = {value} on {} (was {}; {how})",
                    endpoint.name, change.previous
                )
            }
            Action::Rebuild(n) => {
                self.limited(cluster::rebuild(self.lab()?, n)).await?;
                let _ = self.topology.rejoin(n);
                "fresh base backup, new slot, streaming".into()
            }
            Action::Exec {
                command, timeout, ..
            } => {
                run_shell(&Shell {
                    command: command.clone(),
                    timeout: *timeout,
                })
                .await?;
                format!("`{command}`")
            }
        };
        Ok((node, detail))
    }

    /// The node named, or the primary of the moment.
    fn endpoint(&self, node: Option<&str>) -> Result<crate::pg::Endpoint> {
        let view = self.topology.view();
        let i = match node {
            Some(n) => view
                .index_of(n)
                .ok_or_else(|| anyhow!("{n} is not a node of this run"))?,
            None => view
                .primary()
                .ok_or_else(|| anyhow!("the run has no primary now"))?,
        };
        Ok(view.nodes[i].endpoint.clone())
    }

    async fn current_setting(&self, node: Option<&str>, name: &str) -> Option<String> {
        let conn = self.endpoint(node).ok()?.connect(None).await.ok()?;
        let row = conn
            .client
            .query_one("SELECT current_setting($1)", &[&name])
            .await
            .ok()?;
        Some(row.get(0))
    }

    async fn promote(&self, name: Option<&str>) -> Result<(String, String)> {
        let lab = self.lab()?;
        let name = match name {
            Some(n) => n.to_string(),
            None => cluster::most_advanced_standby(lab).await?,
        };
        self.limited(cluster::promote(lab, &name, false, false))
            .await?;
        let followed = match self.topology.promote(&name) {
            Ok(_) => format!("; the load's writes go to {name} now"),
            Err(why) => format!("; the load does not follow ({why})"),
        };
        Ok((name.clone(), format!("{name} promoted{followed}")))
    }

    /// A planned switchover, asked of the orchestrator: the load follows the new primary
    /// and the old one stays in the load as a standby.
    async fn switchover(&self, target: Option<&str>) -> Result<(String, String)> {
        let o = self
            .orchestrator
            .as_ref()
            .ok_or_else(|| anyhow!("a switchover needs an orchestrator (`cluster up --ha`)"))?;
        let from = self.primary_name().unwrap_or_default();
        let to = self.limited(o.switchover(target)).await?;
        let followed = match self.topology.switch_to(&to) {
            Ok(_) => format!("; the load's writes go to {to} now"),
            Err(why) => format!("; the load does not follow ({why})"),
        };
        Ok((
            to.clone(),
            format!(
                "{} switched over from {from} to {to}{followed}",
                o.decided_by()
            ),
        ))
    }

    /// An orchestrated lab (its standbys stream without the link shaper).
    fn orchestrated(&self) -> bool {
        self.lab
            .as_ref()
            .and_then(|l| l.state().ok())
            .is_some_and(|s| s.ha.is_some())
    }

    async fn link(&self, req: Request) -> Result<()> {
        cluster::link(self.lab()?, &req).await
    }

    async fn limited<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(LAB_ACTION_LIMIT, f)
            .await
            .map_err(|_| {
                anyhow!(
                    "did not finish within {}",
                    format_duration(LAB_ACTION_LIMIT)
                )
            })?
    }
}

/// Run an event's shell command (its process group ended after the timeout).
async fn run_shell(sh: &Shell) -> Result<String> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(&sh.command)
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    cluster::run_command(&mut cmd, &format!("`{}`", sh.command), sh.timeout).await
}
