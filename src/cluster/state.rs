//! The lab's state file (`state.json`): nodes, ports, roles, the sync mode and the OS user.

pub use crate::pg::SyncMode;
use anyhow::{Context, Result};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The role a node was last given by the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Standby,
}

/// One PostgreSQL server of the lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeState {
    /// `primary`, `standby1`, ...: also the standby's application_name and slot name.
    pub name: String,
    pub role: Role,
    /// The port PostgreSQL listens on (127.0.0.1).
    pub port: u16,
    /// The port of this node's link in the shaper: the node streams through it when a standby.
    pub link_port: u16,
    /// Set when a standby was promoted over this node: it must be rewound (`cluster rejoin`)
    /// before it runs again, or it would be a second primary.
    #[serde(default)]
    pub needs_rejoin: bool,
    /// The name the primary knows this node by as a standby (application_name and slot),
    /// when it is not the node's own (pg_auto_failover's `pgautofailover_standby_<id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repl_name: Option<String>,
}

/// Everything the tool needs to find and drive the lab again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub schema: u32,
    pub bindir: PathBuf,
    pub server_version: String,
    /// OS user that owns and runs the servers (set when the tool runs as root).
    pub os_user: Option<String>,
    pub sync: SyncMode,
    pub nodes: Vec<NodeState>,
    /// PostgreSQL superuser the tool and `cluster env` connect as.
    pub user: String,
    pub database: String,
    /// Set when an orchestrator runs the nodes (`cluster up --ha`): it owns their roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<HaState>,
}

impl LabState {
    pub fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// The node the tool last made primary.
    pub fn primary(&self) -> &NodeState {
        self.nodes
            .iter()
            .find(|n| n.role == Role::Primary)
            .expect("a lab always records one primary")
    }

    pub fn standbys(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.iter().filter(|n| n.role == Role::Standby)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the lab state {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("the lab state {} is damaged", path.display()))
    }

    /// Write atomically (temp file + rename) so a crash never leaves half a state file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Which orchestrator runs the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HaKind {
    #[serde(rename = "pg_auto_failover")]
    PgAutoFailover,
    #[serde(rename = "patroni")]
    Patroni,
}

impl HaKind {
    /// `--ha` as typed.
    pub fn parse(text: &str) -> Result<HaKind, String> {
        match text {
            "pg_auto_failover" | "pg-auto-failover" => Ok(HaKind::PgAutoFailover),
            "patroni" => Ok(HaKind::Patroni),
            other => Err(format!(
                "'{other}' is not an orchestrator this lab runs: expected pg_auto_failover or patroni"
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            HaKind::PgAutoFailover => "pg_auto_failover",
            HaKind::Patroni => "patroni",
        }
    }
}

impl std::fmt::Display for HaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the state file keeps of an orchestrated lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HaState {
    pub kind: HaKind,
    /// The `--ha-setting` values given (by name, as a person reads them); the others are the
    /// orchestrator's defaults.
    #[serde(default)]
    pub settings: IndexMap<String, String>,
    /// pg_auto_failover's monitor, or etcd's client port.
    pub service_port: u16,
    /// etcd's peer port (Patroni).
    #[serde(default)]
    pub peer_port: Option<u16>,
    /// HAProxy's write and read ports (Patroni).
    #[serde(default)]
    pub write_port: Option<u16>,
    #[serde(default)]
    pub read_port: Option<u16>,
    /// Node i's REST API (Patroni) listens on `rest_port_base + i`.
    #[serde(default)]
    pub rest_port_base: Option<u16>,
}
