//! The drill timeline's actions (`[[event]]`), what each is called in events.csv, and the node
//! it names.

use crate::pg::SyncMode;
use std::time::Duration;

/// A drill action on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    PauseLink(String),
    ResumeLink(String),
    CutLink(String),
    HealLink(String),
    SetLink {
        node: String,
        delay: Option<Duration>,
        rate: Option<u64>,
    },
    /// Kill a node: the lab's own way, or (`by`) a shell command (a `[cluster]`'s node:
    /// `docker kill ...`, `kubectl delete pod --force ...`).
    Kill {
        node: String,
        by: Option<Shell>,
        /// What starts it again after the event's `for` (with `by`: its `undo` command).
        undo_by: Option<Shell>,
    },
    /// Start a node that was killed.
    Start {
        node: String,
        by: Option<Shell>,
    },
    Promote(Option<String>),
    /// A planned switchover asked of the orchestrator (to the node named, if one is).
    Switchover(Option<String>),
    Rejoin(String),
    /// A fresh base backup of the primary replaces the node's data (a lost slot).
    Rebuild(String),
    /// synchronous_standby_names (the lab's sync mode) and/or synchronous_commit (ALTER
    /// SYSTEM on the primary).
    SetSync {
        mode: Option<SyncMode>,
        commit: Option<String>,
    },
    /// ALTER SYSTEM SET on a node (the primary when none is named); a restart when needed.
    SetSetting {
        node: Option<String>,
        name: String,
        value: String,
    },
    Exec {
        command: String,
        undo: Option<String>,
        /// The command is ended (its whole process group) after this long.
        timeout: Duration,
    },
}

/// A shell command an event runs, ended (its whole process group) after `timeout`.
#[derive(Debug, Clone, PartialEq)]
pub struct Shell {
    pub command: String,
    pub timeout: Duration,
}

/// How long an `exec` command may run unless its event says otherwise.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);

pub const ACTIONS: &[&str] = &[
    "pause_link",
    "resume_link",
    "cut_link",
    "heal_link",
    "set_link",
    "kill",
    "start",
    "promote",
    "switchover",
    "rejoin",
    "rebuild",
    "set_sync",
    "set_setting",
    "exec",
];

impl Action {
    /// The event kind for events.csv.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::PauseLink(_) => "pause_link",
            Action::ResumeLink(_) => "resume_link",
            Action::CutLink(_) => "cut_link",
            Action::HealLink(_) => "heal_link",
            Action::SetLink { .. } => "set_link",
            Action::Kill { .. } => "kill",
            Action::Promote(_) => "promote",
            Action::Rejoin(_) => "rejoin",
            Action::SetSync { .. } => "set_sync",
            Action::SetSetting { .. } => "set_setting",
            Action::Rebuild(_) => "rebuild",
            Action::Start { .. } => "start",
            Action::Switchover(_) => "switchover",
            Action::Exec { .. } => "exec",
        }
    }

    /// The node an action names (empty for a cluster-wide one or an unnamed promote).
    pub fn target(&self) -> String {
        match self {
            Action::PauseLink(n)
            | Action::ResumeLink(n)
            | Action::CutLink(n)
            | Action::HealLink(n)
            | Action::Kill { node: n, .. }
            | Action::Start { node: n, .. }
            | Action::Rejoin(n)
            | Action::Rebuild(n)
            | Action::SetLink { node: n, .. }
            | Action::SetSetting { node: Some(n), .. }
            | Action::Promote(Some(n))
            | Action::Switchover(Some(n)) => n.clone(),
            Action::Promote(None)
            | Action::Switchover(None)
            | Action::SetSync { .. }
            | Action::SetSetting { node: None, .. }
            | Action::Exec { .. } => String::new(),
        }
    }
}
